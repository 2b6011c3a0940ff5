import CalloutDevTools
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import CalloutServer

/// The pool against a plain-HTTP echo upstream on loopback, one event loop, one connection allowed.
@Suite struct UpstreamPoolTests {
    /// The pool and the connections a test holds, touched only on `loop`.
    final class Probe: @unchecked Sendable {
        let loop: any EventLoop
        let pool: UpstreamPool
        let endpoint: UpstreamEndpoint
        let limits = UpstreamPool.Limits(
            maxConnectionsPerEndpoint: 1, connectTimeout: .seconds(5), idleTimeout: .seconds(60))
        var held: [String: UpstreamConnection] = [:]
        var delegates: [EndWaiter] = []

        init(port: Int) {
            loop = MultiThreadedEventLoopGroup.singleton.next()
            pool = UpstreamPool(eventLoop: loop)
            endpoint = UpstreamEndpoint(host: "127.0.0.1", port: port, tls: nil)
        }

        /// Asks the pool for a connection, kept as `name` once it comes; resolves then.
        func acquire(_ name: String, fresh: Bool) async throws -> EventLoopFuture<Void> {
            try await loop.submit {
                let given = self.loop.makePromise(of: Void.self)
                self.pool.acquire(self.endpoint, limits: self.limits, fresh: fresh) { result in
                    switch result {
                    case .success(let connection):
                        self.held[name] = connection
                        given.succeed()
                    case .failure(let error): given.fail(error)
                    }
                }
                return given.futureResult
            }.get()
        }

        /// One GET on the connection held as `name`, to its response's end.
        func exchange(on name: String) async throws {
            try await loop.flatSubmit { () -> EventLoopFuture<Void> in
                let connection = self.held[name]!
                let delegate = EndWaiter(promise: self.loop.makePromise(of: Void.self))
                guard connection.begin(delegate, requestIsHEAD: false, namedCredential: "Test") else {
                    return self.loop.makeFailedFuture(ChannelError.ioOnClosedChannel)
                }
                var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/\(name)")
                head.headers.add(name: "Host", value: "127.0.0.1")
                connection.write(.head(head))
                connection.write(.end(nil))
                connection.flush()
                self.delegates.append(delegate)  // the connection holds its delegate weakly
                return delegate.promise.futureResult
            }.get()
        }

        func release(_ name: String) async throws {
            try await loop.submit { self.pool.release(self.held[name]!, reusable: true) }.get()
        }

        func on<T: Sendable>(_ body: @escaping @Sendable () -> T) async throws -> T {
            try await loop.submit { body() }.get()
        }
    }

    final class EndWaiter: UpstreamExchangeDelegate {
        let promise: EventLoopPromise<Void>
        init(promise: EventLoopPromise<Void>) { self.promise = promise }
        func upstreamHead(_ head: HTTPResponseHead) {}
        func upstreamBody(_ buffer: ByteBuffer) {}
        func upstreamEnd() { promise.succeed() }
        func upstreamReadComplete() {}
        func upstreamFailed(_ error: any Error) { promise.fail(error) }
        func upstreamWritabilityChanged() {}
        var acceptsResponseBytes: Bool { true }
    }

    static func withProbe(_ body: (Probe) async throws -> Void) async throws {
        let upstream = try await EchoUpstream.start()
        let probe = Probe(port: upstream.port)
        do {
            try await body(probe)
        } catch {
            try? await probe.on { probe.pool.close() }
            try? await upstream.shutdown()
            throw error
        }
        try await probe.on { probe.pool.close() }
        try await upstream.shutdown()
    }

    /// A callout retrying on a fresh connection (the upstream closed a used one under it) waits
    /// while the one slot is busy. The connection released next has carried an exchange and may
    /// be closing the same way, so the retry gets a new connection in its slot, never that one.
    @Test func aRetryWaitingForAFreshConnectionGetsANewOneNotAUsedOne() async throws {
        try await Self.withProbe { probe in
            let first = try await probe.acquire("first", fresh: false)
            try await first.get()
            try await probe.exchange(on: "first")
            #expect(try await probe.on { probe.held["first"]!.reused })

            let retry = try await probe.acquire("retry", fresh: true)
            #expect(try await probe.on { probe.held["retry"] == nil }, "waits: the one slot is busy")
            try await probe.release("first")
            try await retry.get()
            try #require(await probe.on { probe.held["retry"]! !== probe.held["first"]! })
            #expect(try await probe.on { !probe.held["retry"]!.reused })
            // The used connection closed to make room: the limit still holds.
            try await probe.on { probe.held["first"]!.channel.closeFuture }.get()
            #expect(try await probe.on { probe.pool.openConnections } == 1)
            try await probe.exchange(on: "retry")
        }
    }

    /// An ordinary callout waiting for the slot takes the used connection as it is released.
    @Test func anOrdinaryWaiterTakesTheReleasedConnection() async throws {
        try await Self.withProbe { probe in
            try await probe.acquire("first", fresh: false).get()
            try await probe.exchange(on: "first")

            let next = try await probe.acquire("next", fresh: false)
            try await probe.release("first")
            try await next.get()
            #expect(try await probe.on { probe.held["next"]! === probe.held["first"]! })
            try await probe.exchange(on: "next")
            #expect(try await probe.on { probe.pool.openConnections } == 1)
        }
    }
}
