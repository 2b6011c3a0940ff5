import AsyncHTTPClient
import CalloutCore
import CalloutDevTools
import CalloutServer
import CalloutTokens
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Testing

@Suite(.serialized) struct ShutdownTests {
    /// Waits (bounded) until the upstream has seen `count` request heads.
    static func waitForUpstream(_ upstream: EchoUpstream, count: Int) async throws {
        for _ in 0..<1000 where upstream.requestCount < count { try await Task.sleep(for: .milliseconds(5)) }
        #expect(upstream.requestCount >= count)
    }

    @Test func beginShutdownLetsACalloutInFlightFinish() async throws {
        let env = try await LocalEnvironment.start(clientIds: ["acme-reader", "acme-admin"])
        let logs = LogCapture()
        let config = try ConfigLoader.load(text: OpsHarness.config(env))
        let service = try await CalloutProxyService.start(
            config: config, materials: try CredentialMaterials.load(config), logger: logs.logger(level: .debug))
        let running = Task { try await service.run() }
        // Whatever happens below, the service and its clients are shut down (a client left
        // running would stop the whole test process at its deinit).
        do {
            try await Self.inFlightCalloutFinishes(service: service, env: env)
        } catch {
            print("shutdown test failed; proxy log:\n" + logs.lines.suffix(40).joined(separator: "\n"))
            service.beginShutdown()
            _ = try? await running.value
            await service.close()
            await env.shutdown()
            throw error
        }
        try await running.value
        await service.close()
        await env.shutdown()
        // The listener is closed: new callouts are refused at connect.
        let port = service.listenAddress.port ?? 0
        await #expect(throws: (any Error).self) {
            _ = try await RawHTTPClient.send(
                to: try SocketAddress(ipAddress: "127.0.0.1", port: port),
                head: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/callout:Acme/late"), body: nil,
                timeout: .seconds(5))
        }
    }

    /// A callout whose upstream answers after five seconds is in flight when shutdown begins: it finishes.
    static func inFlightCalloutFinishes(service: CalloutProxyService, env: LocalEnvironment) async throws {
        // A client of its own: the shared one may hold a connection to a port an earlier test's
        // proxy used, which this proxy now has.
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            try await inFlightCalloutFinishes(service: service, env: env, client: client)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    static func inFlightCalloutFinishes(service: CalloutProxyService, env: LocalEnvironment, client: HTTPClient)
        async throws
    {
        // Warm the token so the slow part is the upstream only.
        var warm = HTTPClientRequest(url: service.proxyURL + "/callout:Acme/warm")
        warm.headers.add(name: "X-Callout-Permission-Sets", value: "Readers")
        _ = try await client.execute(warm, timeout: .seconds(10)).body.collect(upTo: 1 << 20)

        // Slow enough that the readiness probes below come while the drain waits for it, even on
        // a busy machine (the admin listener closes once the drain is over).
        env.upstream.setBehavior(.slowHeaders(seconds: 5.0))
        let before = env.upstream.requestCount
        let inFlight = Task {
            var request = HTTPClientRequest(url: service.proxyURL + "/callout:Acme/slow")
            request.headers.add(name: "X-Callout-Permission-Sets", value: "Readers")
            let response = try await client.execute(request, timeout: .seconds(20))
            let body = try await response.body.collect(upTo: 1 << 20)
            return (Int(response.status.code), String(buffer: body))
        }
        try await Self.waitForUpstream(env.upstream, count: before + 1)
        // Not kept alive: draining closes idle admin connections, and a request the client
        // wrote on one just then would meet the close (the race every keep-alive server has).
        var readyRequest = HTTPClientRequest(url: service.adminURL! + "/readyz")
        readyRequest.headers.add(name: "Connection", value: "close")
        let readyBefore = try await client.execute(readyRequest, timeout: .seconds(5))
        #expect(readyBefore.status == .ok)
        service.beginShutdown()
        // While draining, readiness says so.
        let readyDuring = try await client.execute(
            HTTPClientRequest(url: service.adminURL! + "/readyz"), timeout: .seconds(5))
        #expect(readyDuring.status == .serviceUnavailable)

        let (status, body) = try await inFlight.value
        #expect(status == 200, "\(body)")
        #expect(body.contains("/v2/slow"))
    }

    @Test func theServiceGroupDrainsOnGracefulShutdown() async throws {
        let env = try await LocalEnvironment.start(clientIds: ["acme-reader", "acme-admin"])
        let logs = LogCapture()
        let config = try ConfigLoader.load(text: OpsHarness.config(env))
        let logger = logs.logger(level: .debug)
        let service = try await CalloutProxyService.start(
            config: config, materials: try CredentialMaterials.load(config), logger: logger)
        let group = service.serviceGroup(gracefulShutdownSignals: [], logger: logger)
        let running = Task { try await group.run() }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await client.shutdown() } }

        env.upstream.setBehavior(.slowHeaders(seconds: 1.0))
        let inFlight = Task {
            var request = HTTPClientRequest(url: service.proxyURL + "/callout:Acme/slow")
            request.headers.add(name: "X-Callout-Permission-Sets", value: "Readers")
            let response = try await client.execute(request, timeout: .seconds(20))
            _ = try await response.body.collect(upTo: 1 << 20)
            return Int(response.status.code)
        }
        try await Self.waitForUpstream(env.upstream, count: 1)
        await group.triggerGracefulShutdown()
        #expect(try await inFlight.value == 200)
        try await running.value
        await service.close()
        await env.shutdown()
        #expect(logs.text.contains("draining"))
    }
}
