import AsyncHTTPClient
import CalloutDevTools
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Testing

@testable import CalloutServer

/// The binary under load while its configuration is reloaded again and again: upstream
/// connections stay within the limit, and once the load is gone its memory goes back down.
@Suite(.serialized) struct ReloadUnderLoadTests {
    @Test func reloadsUnderLoadKeepConnectionsWithinTheLimitAndMemoryReturns() async throws {
        let binary = try #require(DemoTests.binary(), "build callout-proxy first (swift build)")
        let env = try await LocalEnvironment.start(clientIds: ["acme-reader", "acme-admin"])
        defer { Task { await env.shutdown() } }
        let limit = 8
        let configFile = env.directory.appendingPathComponent("proxy.conf")
        try OpsHarness.config(env, proxySettings: "upstream_max_connections_per_host = \(limit)")
            .write(to: configFile, atomically: true, encoding: .utf8)
        let server = try ServedProcess.start([binary.path, "serve", "--config", configFile.path])
        defer { server.stop() }
        let port = try await server.waitForListenPort()
        let adminPort = try await server.waitForListenPort("admin")
        let client = HTTPClient(eventLoopGroupProvider: .singleton)

        // Half a megabyte up (kept for replay) and down: buffers of every size, on every loop.
        let upload = ByteBuffer(repeating: UInt8(ascii: "x"), count: 512 << 10)
        func callout(_ path: String, heavy: Bool = true) async throws -> Int {
            let query = heavy ? "?respond_bytes=\(512 << 10)" : ""
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/callout:Acme/\(path)\(query)")
            request.headers.add(name: "X-Callout-Permission-Sets", value: "Readers")
            if heavy {
                request.method = .POST
                request.body = .bytes(upload)
            }
            let response = try await client.execute(request, timeout: .seconds(60))
            _ = try await response.body.collect(upTo: 4 << 20)
            return Int(response.status.code)
        }
        func upstreamConnections() async throws -> Int {
            let response = try await client.execute(
                HTTPClientRequest(url: "http://127.0.0.1:\(adminPort)/metrics"), timeout: .seconds(10))
            let text = String(buffer: try await response.body.collect(upTo: 4 << 20))
            return Int(OpsHarness.metric("callout_upstream_connections", in: text) ?? -1)
        }

        #expect(try await callout("warm", heavy: false) == 200)
        try await Task.sleep(for: .seconds(1))
        let startRSS = try #require(server.residentBytes())
        let failures = NIOLockedValueBox(0)
        let peak = NIOLockedValueBox(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<8 {
                group.addTask {
                    for i in 0..<60 where (try? await callout("load/\(caller)/\(i)")) != 200 {
                        failures.withLockedValue { $0 += 1 }
                    }
                }
            }
            group.addTask {
                for _ in 0..<6 {
                    try await Task.sleep(for: .milliseconds(300))
                    kill(server.childPID(), SIGHUP)
                    let now = try await upstreamConnections()
                    peak.withLockedValue { $0 = max($0, now) }
                }
            }
            try await group.waitForAll()
        }
        let loadedRSS = server.residentBytes() ?? 0
        try await client.shutdown()
        #expect(failures.withLockedValue { $0 } == 0)
        // Log lines are written in batches: wait (bounded) for the last reload's line.
        var reloads = 0
        for _ in 0..<50 where reloads < 6 {
            reloads = server.output.components(separatedBy: "configuration reloaded").count - 1
            if reloads < 6 { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(reloads == 6)
        #expect(peak.withLockedValue { $0 } <= limit)

        // Idle: no client connection for a whole check, then memory is given back.
        var idleRSS = loadedRSS
        for _ in 0..<40 {
            try await Task.sleep(for: .milliseconds(500))
            idleRSS = server.residentBytes() ?? idleRSS
            if idleRSS <= startRSS + 16 << 20 { break }
        }
        print("RSS: start \(startRSS >> 20) MiB, under load \(loadedRSS >> 20) MiB, idle \(idleRSS >> 20) MiB")
        #expect(idleRSS <= startRSS + 16 << 20, "start \(startRSS >> 20) MiB, idle \(idleRSS >> 20) MiB")
    }
}

@Suite struct MemoryTrimmerTests {
    typealias State = MemoryTrimmer.State

    @Test func trimsOnceAfterAQuietIntervalThatFollowsTraffic() {
        var state = State()
        var trims: [Bool] = []
        for busy in [true, true, false, false, false, true, false, false] {
            let (next, trim) = state.check(busy: busy)
            state = next
            trims.append(trim)
        }
        // Quiet at two checks in a row trims; staying quiet does not trim again; new traffic re-arms it.
        #expect(trims == [false, false, false, true, false, false, false, true])
    }
}
