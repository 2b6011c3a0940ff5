import CalloutCore
import CalloutTokens
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import CalloutServer

/// ``CalloutHandler`` on an `EmbeddedChannel`: requests the proxy answers itself (an unknown
/// alias, a malformed head), so no socket, identity provider or upstream is involved; time is the
/// embedded loop's.
@Suite struct CalloutHandlerTests {
    struct NoTokens: TokenSource {
        struct Unused: Error {}
        func token(for demand: TokenDemand) async throws -> IssuedToken { throw Unused() }
        func invalidate(_ token: IssuedToken, for demand: TokenDemand) async {}
    }

    struct NoObserver: CalloutObserver {
        func calloutFinished(_ record: CalloutLogRecord, duration: Duration) {}
        func upstreamResponded(namedCredential: String, duration: Duration) {}
        func refreshNotReplayed(namedCredential: String) {}
        func refreshGuarded(namedCredential: String) {}
        func connectionRejected() {}
        func connectionSetupFailed(kind: String) {}
        func upstreamDesync(namedCredential: String, reason: String) {}
    }

    /// A channel with the handler as the listener installs it, behind a request decoder.
    static func channel(headTimeout: Int64 = 10, idleTimeout: Int64 = 60) throws -> EmbeddedChannel {
        let config = try ConfigLoader.load(text: "[proxy]\nlisten = \"127.0.0.1:0\"\n")
        let runtime = try RuntimeConfiguration(config, materials: CredentialMaterials(signing: [:]))
        let channel = EmbeddedChannel()
        let services = CalloutServices(
            configuration: runtime, tokens: NoTokens(), logger: Logger(label: "test"), observer: NoObserver(),
            connections: ConnectionTracker(group: channel.embeddedEventLoop),
            pools: UpstreamPools(logger: Logger(label: "test"), observer: NoObserver()))
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder()))
        try channel.pipeline.syncOperations.addHandler(
            CalloutHandler(
                services: services, headTimeout: .seconds(headTimeout), idleTimeout: .seconds(idleTimeout),
                maxHeaderBytes: 8192))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    /// A bodiless request's bytes.
    static func request(_ uri: String, _ extra: String = "") -> ByteBuffer {
        ByteBuffer(string: text(uri, extra))
    }

    static func text(_ uri: String, _ extra: String = "") -> String {
        "GET \(uri) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(extra)\r\n"
    }

    /// The responses written so far, as (status, end seen).
    static func responses(_ channel: EmbeddedChannel) throws -> [(status: UInt, ended: Bool)] {
        var out: [(UInt, Bool)] = []
        while let part = try channel.readOutbound(as: HTTPServerResponsePart.self) {
            switch part {
            case .head(let head): out.append((head.status.code, false))
            case .body: break
            case .end: out[out.count - 1].1 = true
            }
        }
        return out
    }

    @Test func pipelinedRequestsAreAnsweredInOrderOnOneConnection() throws {
        let channel = try Self.channel()
        // Three requests in one read, as a pipelining client sends them.
        var bytes = ByteBuffer()
        for name in ["A", "B", "C"] { bytes.writeImmutableBuffer(Self.request("/callout:\(name)/x")) }
        try channel.writeInbound(bytes)
        let answered = try Self.responses(channel)
        #expect(answered.map(\.status) == [404, 404, 404])
        #expect(answered.allSatisfy { $0.ended })
        #expect(channel.isActive, "refusals of bodiless requests keep the connection")
        _ = try? channel.finish()
    }

    @Test func aMalformedRequestIsAnsweredThenTheConnectionEnds() throws {
        let channel = try Self.channel()
        _ = try? channel.writeInbound(ByteBuffer(string: "GET /callout:A/x HTTP/1.1\r\nX-A: a\u{1}b\r\n\r\n"))
        #expect(try Self.responses(channel).map(\.status) == [400])
        // Then the write side is shut down and the rest read and dropped, until the lingering time.
        _ = try? channel.writeInbound(ByteBuffer(string: "more bytes the client had sent"))
        #expect(try Self.responses(channel).isEmpty, "answered once")
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        #expect(!channel.isActive, "the connection ends at the lingering time")
    }

    @Test func aClientThatSendsNoHeadIsCutOffAtTheHeadTimeout() throws {
        let channel = try Self.channel(headTimeout: 2)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
    }

    @Test func anIdleKeepAliveConnectionIsClosedAtTheIdleLimit() throws {
        let channel = try Self.channel(headTimeout: 2, idleTimeout: 5)
        try channel.writeInbound(Self.request("/callout:A/x"))
        #expect(try Self.responses(channel).map(\.status) == [404])
        channel.embeddedEventLoop.advanceTime(by: .seconds(3))
        #expect(channel.isActive, "after a response the idle limit applies, not the head timeout")
        channel.embeddedEventLoop.advanceTime(by: .seconds(3))
        #expect(!channel.isActive)
    }

    @Test func aRequestToUpgradeIsTheLastOne() throws {
        let channel = try Self.channel()
        let upgrade = Self.text("/callout:A/x", "Connection: upgrade\r\nUpgrade: websocket\r\n")
        try channel.writeInbound(ByteBuffer(string: upgrade + Self.text("/callout:B/x")))
        let answered = try Self.responses(channel)
        #expect(answered.map(\.status) == [404])
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive, "the proxy does not upgrade: the connection ends after the answer")
    }
}
