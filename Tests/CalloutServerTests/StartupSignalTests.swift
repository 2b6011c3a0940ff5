import CalloutDevTools
import Foundation
import Testing

/// A SIGTERM that arrives while `serve` is still starting up stops it cleanly (exit 0), instead
/// of the signal's default action. The signal is sent the moment the process catches SIGTERM
/// (read from `/proc/PID/status`), before its configuration is loaded and its listeners are up,
/// and again at later moments of start-up.
@Suite(.serialized) struct StartupSignalTests {
    /// Whether the process has a handler for SIGTERM (its `SigCgt` mask).
    static func catchesSIGTERM(_ pid: Int32) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("SigCgt:") }),
            let mask = UInt64(line.dropFirst("SigCgt:".count).trimmingCharacters(in: .whitespaces), radix: 16)
        else { return false }
        return mask & (1 << (UInt64(SIGTERM) - 1)) != 0
    }

    @Test func aSIGTERMDuringStartUpExitsZero() async throws {
        let binary = try #require(DemoTests.binary(), "build callout-proxy first (swift build)")
        let env = try await LocalEnvironment.start(clientIds: ["acme-reader", "acme-admin"])
        defer { Task { await env.shutdown() } }
        let config = env.directory.appendingPathComponent("proxy.conf")
        try OpsHarness.config(env).write(to: config, atomically: true, encoding: .utf8)
        for extraDelay in [0, 20, 100] {
            let server = try ServedProcess.start([binary.path, "serve", "--config", config.path])
            defer { server.stop() }
            for _ in 0..<600 where !Self.catchesSIGTERM(server.childPID()) && server.process.isRunning {
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(Self.catchesSIGTERM(server.childPID()), "\(server.output)")
            if extraDelay > 0 { try await Task.sleep(for: .milliseconds(extraDelay)) }
            kill(server.childPID(), SIGTERM)
            for _ in 0..<300 where server.process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
            #expect(!server.process.isRunning)
            #expect(server.process.terminationReason == .exit, "\(extraDelay) ms in: \(server.output)")
            #expect(server.process.terminationStatus == 0, "\(extraDelay) ms in: \(server.output)")
        }
    }
}
