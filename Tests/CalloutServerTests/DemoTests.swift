import Foundation
import Testing

/// Runs the built `callout-proxy demo` end to end, as a user would, and reads what it prints.
@Suite struct DemoTests {
    /// The `callout-proxy` executable next to the test bundle, else under the package's `.build`.
    static func binary() -> URL? {
        let fileManager = FileManager.default
        var candidates: [URL] = []
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(directory.appendingPathComponent("callout-proxy"))
            directory.deleteLastPathComponent()
        }
        let root = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/debug/callout-proxy"))
        return candidates.first { fileManager.isExecutableFile(atPath: $0.path) }
    }

    /// Runs `binary arguments`, killing it after `timeout`; returns its exit status and its
    /// standard output and error together.
    static func run(_ binary: URL, _ arguments: [String], timeout: Duration) async throws -> (Int32, String) {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let reader = Task.detached { pipe.fileHandleForReading.readDataToEndOfFile() }
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        if process.isRunning {
            process.terminate()
            try await Task.sleep(for: .seconds(2))
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        let output = String(decoding: await reader.value, as: UTF8.self)
        return (process.terminationStatus, output)
    }

    @Test func demoRunsEverySampleAndExitsZeroWithoutPrintingSecrets() async throws {
        let binary = try #require(Self.binary(), "build callout-proxy first (swift build)")
        let (status, output) = try await Self.run(
            binary, ["demo", "--listen", "127.0.0.1:0", "--run-sample", "--exit-after-sample"], timeout: .seconds(120))
        #expect(status == 0, "\(output)")

        // The five samples, each with the outcome it should show.
        #expect(output.contains("All 5 sample outcomes matched."), "\(output)")
        #expect(!output.contains("MISMATCH"))
        #expect(output.components(separatedBy: "  ok\n").count - 1 == 5)
        let samples = output.components(separatedBy: "\n[").dropFirst().map { "[" + $0 }
        try #require(samples.count == 5, "\(output)")
        // 1: forward-proxy form, Reader chosen, token fetched from the verifying IdP.
        #expect(samples[0].contains("GET http://Acme/items?x=1"))
        #expect(samples[0].contains("principal  Reader (sequence 2, client_id acme-reader"))
        #expect(samples[0].contains("token      fetched: identity provider answered 200 to client_id acme-reader"))
        #expect(samples[0].contains("scope session:role:Finance"))
        #expect(samples[0].contains("upstream   saw GET /v2/items?x=1 with Authorization: Bearer dev."))
        #expect(samples[0].contains("result     200, principal Reader, token fetched"))
        // 2: path form, same caller: cached.
        #expect(samples[1].contains("GET /callout:Acme/items?x=2"))
        #expect(samples[1].contains("token      cached: no call to the identity provider"))
        #expect(samples[1].contains("result     200, principal Reader, token cached"))
        // 3: both permission sets: the lower sequence number (Admin) wins, with its own token.
        #expect(samples[2].contains("result     200, principal Admin, token fetched"))
        #expect(samples[2].contains("scope session:role:Engineering"))
        // 4: no permission set: refused before any token or upstream call.
        #expect(samples[3].contains("result     403, no_principal"))
        #expect(samples[3].contains("upstream   not called; identity provider not called"))
        // 5: revoked token: the endpoint answers 401, one refresh, one retry.
        #expect(samples[4].contains("identity provider revoked Reader's token"))
        #expect(samples[4].contains("answered 401"))
        #expect(
            samples[4].contains("result     200, principal Reader, token refreshed once after a 401, request retried"))

        // Clean exit: everything stopped and the temporary folder deleted.
        let stopped = try #require(output.split(separator: "\n").first { $0.hasPrefix("stopped:") })
        let folder = try #require(
            stopped.split(separator: "; ").last?.replacingOccurrences(of: " is deleted", with: ""))
        #expect(!FileManager.default.fileExists(atPath: String(folder)), "\(folder)")

        // Tokens only as short prefixes; no assertion, no key material.
        #expect(output.range(of: #"dev\.[A-Za-z0-9_-]{12,}"#, options: .regularExpression) == nil, "a full token")
        #expect(output.range(of: #"eyJ[A-Za-z0-9_-]{10,}\."#, options: .regularExpression) == nil, "a JWT")
        #expect(!output.contains("-----BEGIN"))
        #expect(!output.contains("PRIVATE KEY"))
        #expect(output.range(of: #"(?m)^[A-Za-z0-9+/]{64}$"#, options: .regularExpression) == nil, "a PEM line")
    }
}
