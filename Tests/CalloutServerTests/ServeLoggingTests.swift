import AsyncHTTPClient
import CalloutDevTools
import Foundation
import NIOHTTP1
import Testing

/// `callout-proxy serve` as a user runs it: every access line reaches its file or standard error
/// by a clean SIGTERM, and SIGUSR1 starts a new file after the old one was moved away.
@Suite(.serialized) struct ServeLoggingTests {
    /// A running `serve` with its standard error in a file.
    struct Served {
        let process: Process
        let stderrPath: String
        let port: Int

        var standardError: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

        func signal(_ number: Int32) { kill(process.processIdentifier, number) }

        /// Sends SIGTERM and waits (bounded) for the exit status.
        func terminate() async throws -> Int32 {
            signal(SIGTERM)
            for _ in 0..<300 where process.isRunning { try await Task.sleep(for: .milliseconds(100)) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            return process.terminationStatus
        }
    }

    static func serve(config: String, in env: LocalEnvironment) async throws -> Served {
        let binary = try #require(DemoTests.binary(), "build callout-proxy first (swift build)")
        let configPath = env.directory.appendingPathComponent("proxy.conf").path
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        let stderrPath = env.directory.appendingPathComponent("stderr.log").path
        try Data().write(to: URL(fileURLWithPath: stderrPath))
        let process = Process()
        process.executableURL = binary
        process.arguments = ["serve", "--config", configPath]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        try process.run()
        // The startup line names the port (`listen = "127.0.0.1:0"`).
        for _ in 0..<300 {
            let text = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
            if let start = AccessLogTests.jsonLines(text).first(where: {
                $0["msg"] as? String == "callout-proxy started"
            }),
                let listen = start["listen"] as? String,
                let port = listen.split(separator: ":").last.flatMap({ Int($0) })
            {
                return Served(process: process, stderrPath: stderrPath, port: port)
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        process.terminate()
        throw CocoaError(.fileReadCorruptFile, userInfo: [NSLocalizedDescriptionKey: "serve did not start"])
    }

    static func callouts(_ count: Int, port: Int, tag: String) async throws {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            for i in 0..<count {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/callout:Acme/\(tag)/\(i)")
                request.headers.add(name: "X-Callout-Permission-Sets", value: "Readers")
                let response = try await client.execute(request, timeout: .seconds(30))
                _ = try await response.body.collect(upTo: 1 << 20)
                #expect(response.status == .ok)
            }
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    static func accessLines(_ text: String, tag: String) -> [String] {
        AccessLogTests.jsonLines(text).compactMap { $0["path"] as? String }.filter { $0.contains("/\(tag)/") }
    }

    static func withEnvironment(_ body: (LocalEnvironment) async throws -> Void) async throws {
        let env = try await LocalEnvironment.start(clientIds: ["acme-reader", "acme-admin"])
        do {
            try await body(env)
        } catch {
            await env.shutdown()
            throw error
        }
        await env.shutdown()
    }

    @Test func aCleanSIGTERMLosesNoAccessLineOnStandardError() async throws {
        try await Self.withEnvironment { env in
            let served = try await Self.serve(config: ProxyHarness.standardConfig(env), in: env)
            try await Self.callouts(200, port: served.port, tag: "stderr")
            #expect(try await served.terminate() == 0)
            let text = served.standardError
            #expect(Self.accessLines(text, tag: "stderr") == (0..<200).map { "/callout:Acme/stderr/\($0)" })
            #expect(text.contains(#""msg":"callout-proxy stopped""#))
        }
    }

    @Test func aCleanSIGTERMLosesNoAccessLineInAFile() async throws {
        try await Self.withEnvironment { env in
            let path = env.directory.appendingPathComponent("access.log").path
            let served = try await Self.serve(
                config: ProxyHarness.standardConfig(env, proxySettings: "access_log = \"access.log\""), in: env)
            try await Self.callouts(200, port: served.port, tag: "file")
            #expect(try await served.terminate() == 0)
            let text = try String(contentsOfFile: path, encoding: .utf8)
            #expect(Self.accessLines(text, tag: "file") == (0..<200).map { "/callout:Acme/file/\($0)" })
            #expect(text.split(separator: "\n").count == 200)
            #expect(Self.accessLines(served.standardError, tag: "file").isEmpty)
        }
    }

    @Test func sigusr1StartsANewFileAtThePathAfterARename() async throws {
        try await Self.withEnvironment { env in
            let path = env.directory.appendingPathComponent("access.log").path
            let rotated = path + ".1"
            let served = try await Self.serve(
                config: ProxyHarness.standardConfig(env, proxySettings: "access_log = \"\(path)\""), in: env)
            try await Self.callouts(5, port: served.port, tag: "before")
            // Lines are written within a second: wait (bounded) until all five are in the file.
            for _ in 0..<100 {
                let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
                if Self.accessLines(text, tag: "before").count == 5 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            try FileManager.default.moveItem(atPath: path, toPath: rotated)
            served.signal(SIGUSR1)
            for _ in 0..<100 where !FileManager.default.fileExists(atPath: path) {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(FileManager.default.fileExists(atPath: path))
            try await Self.callouts(3, port: served.port, tag: "after")
            #expect(try await served.terminate() == 0)
            let old = try String(contentsOfFile: rotated, encoding: .utf8)
            let new = try String(contentsOfFile: path, encoding: .utf8)
            #expect(Self.accessLines(old, tag: "before").count == 5)
            #expect(Self.accessLines(old, tag: "after").isEmpty)
            #expect(Self.accessLines(new, tag: "after") == (0..<3).map { "/callout:Acme/after/\($0)" })
            #expect(Self.accessLines(new, tag: "before").isEmpty)
        }
    }
}
