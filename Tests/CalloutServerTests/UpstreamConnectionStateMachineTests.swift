import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import CalloutServer

@Suite struct UpstreamConnectionStateMachineTests {
    typealias Machine = UpstreamConnectionStateMachine
    let response = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8)

    /// A connection that carried one clean exchange and is idle again.
    func reusedMachine() -> Machine {
        var m = Machine()
        #expect(m.beginExchange(requestIsHEAD: false) == true)
        m.requestSent()
        #expect(m.bytesReceived(response) == .pass)
        #expect(m.responseHead(keepAlive: true) == .deliver)
        #expect(m.responseEnd() == .deliverAndSettle)
        #expect(m.readComplete() == true)
        #expect(m.state == .idle(reused: true))
        return m
    }

    @Test func aCleanExchangeSettlesThenIsReusable() {
        var m = Machine()
        #expect(m.isIdle)
        #expect(m.beginExchange(requestIsHEAD: false) == true)
        #expect(m.beginExchange(requestIsHEAD: false) == false, "one exchange at a time")
        m.requestSent()
        #expect(m.bytesReceived(response) == .pass)
        #expect(m.responseHead(keepAlive: true) == .deliver)
        #expect(m.deliversBody)
        #expect(m.responseEnd() == .deliverAndSettle)
        #expect(!m.isIdle, "not reusable before the read that carried the end is over")
        #expect(m.beginExchange(requestIsHEAD: false) == false)
        #expect(m.readComplete() == true)
        #expect(m.isIdle)
        #expect(m.readComplete() == false)
    }

    @Test func bytesAfterTheResponseInTheSameReadCloseIt() {
        var m = Machine()
        _ = m.beginExchange(requestIsHEAD: false)
        m.requestSent()
        #expect(m.bytesReceived(response + response) == .pass)
        #expect(m.responseHead(keepAlive: true) == .deliver)
        #expect(m.responseEnd() == .deliverAndClose(desync: .bytesAfterResponse))
        #expect(m.state == .closed)
        // The second answer the decoder goes on to produce reaches nobody.
        #expect(m.responseHead(keepAlive: true) == .ignore)
        #expect(!m.deliversBody)
        #expect(m.responseEnd() == .ignore)
    }

    @Test func bytesWhileSettlingCloseIt() {
        var m = Machine()
        _ = m.beginExchange(requestIsHEAD: false)
        m.requestSent()
        _ = m.bytesReceived(response)
        _ = m.responseHead(keepAlive: true)
        #expect(m.responseEnd() == .deliverAndSettle)
        // Another TLS record of the same read, decoded after the end.
        #expect(m.bytesReceived(Array("HTTP/1.1 200".utf8)) == .close(.bytesAfterResponse))
        #expect(m.state == .closed)
        #expect(m.readComplete() == false)
    }

    @Test func bytesWhileIdleCloseIt() {
        var m = reusedMachine()
        #expect(m.bytesReceived(response) == .close(.bytesWhileIdle))
        #expect(m.state == .closed)
        #expect(m.beginExchange(requestIsHEAD: false) == false)
        var fresh = Machine()
        #expect(fresh.bytesReceived([0x0d]) == .close(.bytesWhileIdle))
    }

    @Test func anEarlyAnswerOnAReusedConnectionGoesToNobody() {
        var m = reusedMachine()
        #expect(m.beginExchange(requestIsHEAD: false) == true)
        #expect(m.bytesReceived(response) == .pass)
        #expect(m.responseHead(keepAlive: true) == .fail(.responseBeforeRequestSent))
        #expect(m.state == .closed)
    }

    @Test func anEarlyAnswerOnAFreshConnectionIsDeliveredButEndsIt() {
        var m = Machine()
        _ = m.beginExchange(requestIsHEAD: false)
        _ = m.bytesReceived(response)
        #expect(m.responseHead(keepAlive: true) == .deliver)
        m.requestSent()
        #expect(m.responseEnd() == .deliverAndClose(desync: .responseBeforeRequestSent))
    }

    @Test func aResponseThatAsksToCloseIsNotReused() {
        var m = Machine()
        _ = m.beginExchange(requestIsHEAD: false)
        m.requestSent()
        _ = m.bytesReceived(response)
        #expect(m.responseHead(keepAlive: false) == .deliver)
        #expect(m.responseEnd() == .deliverAndClose(desync: nil))
    }

    @Test func anEndTheFramerDoesNotAgreeWithIsNotTrusted() {
        var m = Machine()
        _ = m.beginExchange(requestIsHEAD: false)
        m.requestSent()
        _ = m.bytesReceived(response.dropLast())
        _ = m.responseHead(keepAlive: true)
        #expect(m.responseEnd() == .deliverAndClose(desync: .unframedResponse))
        var invalid = Machine()
        _ = invalid.beginExchange(requestIsHEAD: false)
        invalid.requestSent()
        _ = invalid.bytesReceived(Array("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".utf8))
        _ = invalid.responseHead(keepAlive: true)
        #expect(invalid.responseEnd() == .deliverAndClose(desync: .unframedResponse))
    }

    @Test func aHEADResponseEndsAtItsHead() {
        var m = Machine()
        _ = m.beginExchange(requestIsHEAD: true)
        m.requestSent()
        _ = m.bytesReceived(Array("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n".utf8))
        _ = m.responseHead(keepAlive: true)
        #expect(m.responseEnd() == .deliverAndSettle)
    }

    @Test func closingReportsWhetherAnExchangeWasCut() {
        var busy = Machine()
        _ = busy.beginExchange(requestIsHEAD: false)
        #expect(busy.closed() == true)
        var idle = Machine()
        #expect(idle.closed() == false)
        #expect(idle.state == .closed)
    }
}

/// The handlers around the state machine, on an `EmbeddedChannel`: what a callout sees when the
/// upstream sends more than it was asked for.
@Suite struct UpstreamConnectionHandlerTests {
    final class Recorder: UpstreamExchangeDelegate {
        var events: [String] = []
        func upstreamHead(_ head: HTTPResponseHead) { events.append("head \(head.status.code)") }
        func upstreamBody(_ buffer: ByteBuffer) { events.append("body \(String(buffer: buffer))") }
        func upstreamEnd() { events.append("end") }
        func upstreamReadComplete() {}
        func upstreamFailed(_ error: any Error) { events.append("failed \(type(of: error))") }
        func upstreamWritabilityChanged() {}
        var acceptsResponseBytes: Bool { true }
    }

    final class Reports: @unchecked Sendable {
        var reasons: [UpstreamDesync] = []
    }

    func makeConnection() throws -> (EmbeddedChannel, UpstreamConnectionHandler, Reports) {
        let reports = Reports()
        let handler = UpstreamConnectionHandler(onDesync: { reason, _ in reports.reasons.append(reason) })
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(UpstreamBytesMonitor(connection: handler))
        try channel.pipeline.syncOperations.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
        return (channel, handler, reports)
    }

    func exchange(_ handler: UpstreamConnectionHandler, _ delegate: Recorder) {
        #expect(handler.machine.beginExchange(requestIsHEAD: false) == true)
        handler.delegate = delegate
        handler.write(.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/a")))
        handler.write(.end(nil))
        handler.flush()
    }

    let ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    @Test func aSecondAnswerInTheSameReadReachesNobody() throws {
        let (channel, handler, reports) = try makeConnection()
        let first = Recorder()
        exchange(handler, first)
        try channel.writeInbound(ByteBuffer(string: ok + "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra"))
        channel.pipeline.fireChannelReadComplete()
        #expect(first.events == ["head 200", "body ok", "end"])
        #expect(reports.reasons == [.bytesAfterResponse])
        #expect(!channel.isActive)
        _ = try? channel.finish()
    }

    @Test func anAnswerInALaterRecordOfTheSameReadReachesNobody() throws {
        let (channel, handler, reports) = try makeConnection()
        let first = Recorder()
        exchange(handler, first)
        // Two reads in one read cycle (two TLS records of one socket read): no read-complete between.
        channel.pipeline.fireChannelRead(ByteBuffer(string: ok))
        #expect(handler.machine.isSettling)
        channel.pipeline.fireChannelRead(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra"))
        channel.pipeline.fireChannelReadComplete()
        #expect(first.events == ["head 200", "body ok", "end"])
        #expect(reports.reasons == [.bytesAfterResponse])
        #expect(!channel.isActive)
        _ = try? channel.finish()
    }

    @Test func aCleanAnswerLeavesTheConnectionReusableAndIdleBytesCloseIt() throws {
        let (channel, handler, reports) = try makeConnection()
        let first = Recorder()
        exchange(handler, first)
        channel.pipeline.fireChannelRead(ByteBuffer(string: ok))
        var settled = false
        handler.onSettled = { settled = true }
        channel.pipeline.fireChannelReadComplete()
        #expect(settled)
        #expect(handler.machine.isIdle)
        #expect(reports.reasons.isEmpty)
        // The same connection carries a second exchange.
        let second = Recorder()
        exchange(handler, second)
        try channel.writeInbound(ByteBuffer(string: ok))
        channel.pipeline.fireChannelReadComplete()
        #expect(second.events == ["head 200", "body ok", "end"])
        // Then the upstream speaks unasked while the connection is idle.
        try channel.writeInbound(ByteBuffer(string: "junk"))
        #expect(reports.reasons == [.bytesWhileIdle])
        #expect(!channel.isActive)
        _ = try? channel.finish()
    }

    @Test func junkAfterABodyEndsTheConnectionNotTheNextCallout() throws {
        let (channel, handler, reports) = try makeConnection()
        let first = Recorder()
        exchange(handler, first)
        try channel.writeInbound(ByteBuffer(string: ok + "\u{1}\u{2}garbage"))
        channel.pipeline.fireChannelReadComplete()
        #expect(first.events == ["head 200", "body ok", "end"])
        #expect(reports.reasons == [.bytesAfterResponse])
        #expect(!channel.isActive)
        _ = try? channel.finish()
    }

    @Test func keepAliveTimeoutIsRead() {
        #expect(UpstreamConnectionHandler.keepAliveTimeout(["Keep-Alive": "timeout=5, max=100"]) == .seconds(5))
        #expect(UpstreamConnectionHandler.keepAliveTimeout(["Keep-Alive": "max=100, timeout=7"]) == .seconds(7))
        #expect(UpstreamConnectionHandler.keepAliveTimeout(["Keep-Alive": "max=100"]) == nil)
        #expect(UpstreamPool.idleLimit(.seconds(60), upstreamSays: .seconds(5)) == .seconds(4))
        #expect(UpstreamPool.idleLimit(.seconds(3), upstreamSays: .seconds(5)) == .seconds(3))
        #expect(UpstreamPool.idleLimit(.seconds(60), upstreamSays: nil) == .seconds(60))
        #expect(UpstreamPool.idleLimit(.seconds(60), upstreamSays: .seconds(1)) == .zero)
    }
}
