import CalloutDevTools
import Foundation
import Testing

/// A SIGTERM that arrives while `serve` is still starting up stops it cleanly (exit 0), instead
/// of the signal's default action.
@Suite(.serialized) struct StartupSignalTests {
    @Test func aSIGTERMWhileTheConfigurationIsBeingReadExitsZero() async throws {
        let binary = try #require(DemoTests.binary(), "build callout-proxy first (swift build)")
        let env = try await LocalEnvironment.start(clientIds: ["acme-reader", "acme-admin"])
        defer { Task { await env.shutdown() } }
        // The configuration is a FIFO: start-up blocks reading it until the test writes it, so
        // the signal is sent at a known point of start-up.
        let fifo = env.directory.appendingPathComponent("proxy.conf").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let server = try ServedProcess.start([binary.path, "serve", "--config", fifo])
        defer { server.stop() }

        // Opening the FIFO for writing succeeds once the proxy has opened it for reading.
        var writer: Int32 = -1
        for _ in 0..<300 where writer < 0 {
            writer = open(fifo, O_WRONLY | O_NONBLOCK)
            if writer < 0 { try await Task.sleep(for: .milliseconds(100)) }
        }
        try #require(writer >= 0, "serve never opened its configuration: \(server.output)")
        kill(server.childPID(), SIGTERM)
        let text = Array(OpsHarness.config(env).utf8)
        let written = text.withUnsafeBytes { write(writer, $0.baseAddress, $0.count) }
        close(writer)
        #expect(written == text.count)

        for _ in 0..<300 where server.process.isRunning { try await Task.sleep(for: .milliseconds(100)) }
        #expect(!server.process.isRunning)
        #expect(server.process.terminationReason == .exit, "\(server.output)")
        #expect(server.process.terminationStatus == 0, "\(server.output)")
        #expect(server.output.contains("SIGTERM"), "\(server.output)")
    }
}
