import NIOCore
import NIOHTTP1
import Testing

@testable import CalloutServer

/// Every transition of ``ClientConnectionStateMachine``: pipelining order, read holding, the
/// client's limits in each state, upgrade, drain and the closing answers.
@Suite struct ClientConnectionStateMachineTests {
    typealias Machine = ClientConnectionStateMachine
    static let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    static let limits = Machine.Limits(
        headTimeout: .seconds(10), idleTimeout: .seconds(60),
        body: BodyDeadline(timeout: .seconds(30), minBytesPerSecond: 1024))

    /// Lets a mutating call's result be checked inside `#expect`.
    static func v<T>(_ value: T) -> T { value }

    static func machine() -> Machine {
        var m = Machine(limits: limits)
        m.activated(now: t0)
        return m
    }

    static func head(_ uri: String = "/", upgrade: Bool = false) -> HTTPServerRequestPart {
        var headers = HTTPHeaders()
        if upgrade { headers.add(name: "Upgrade", value: "websocket") }
        return .head(HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: headers))
    }

    static func body(_ n: Int) -> HTTPServerRequestPart { .body(ByteBuffer(repeating: 0, count: n)) }

    static func uri(_ part: HTTPServerRequestPart?) -> String? {
        if case .head(let head) = part { return head.uri }
        return nil
    }

    @Test func theFirstHeadIsDueWithinTheHeadTimeout() {
        let m = Self.machine()
        #expect(m.clientDeadline == Self.t0 + .seconds(10))
        #expect(m.isIdle)
    }

    @Test func aRequestThenItsResponseThenTheIdleLimit() {
        var m = Self.machine()
        #expect(Self.v(m.received(Self.head(), now: Self.t0)) == .deliver)
        #expect(!m.isIdle)
        // Reading the body: the body deadline (30 s) comes before the idle limit (60 s).
        #expect(m.clientDeadline == Self.t0 + .seconds(30))
        #expect(Self.v(m.received(Self.body(4096), now: Self.t0 + .seconds(1))) == .deliver)
        #expect(m.clientDeadline == Self.t0 + .seconds(34), "4 KiB at 1 KiB/s earned 4 s")
        #expect(Self.v(m.received(.end(nil), now: Self.t0 + .seconds(2))) == .deliver)
        #expect(m.clientDeadline == nil, "the client owes nothing while its callout runs")
        m.responseHeadWritten()
        #expect(Self.v(m.responseEnded(keepAlive: true, draining: false, now: Self.t0 + .seconds(3))) == .stay)
        #expect(m.clientDeadline == Self.t0 + .seconds(63))
        #expect(m.isIdle)
        var late = m
        #expect(!Self.v(late.clientDeadlinePassed(now: Self.t0 + .seconds(62))))
        #expect(Self.v(late.clientDeadlinePassed(now: Self.t0 + .seconds(63))))
        #expect(late.clientDeadline == nil)
    }

    @Test func pipelinedRequestsWaitAndGoOnInOrder() {
        var m = Self.machine()
        #expect(Self.v(m.received(Self.head("/1"), now: Self.t0)) == .deliver)
        #expect(Self.v(m.received(.end(nil), now: Self.t0)) == .deliver)
        #expect(Self.v(m.received(Self.head("/2"), now: Self.t0)) == .queue)
        #expect(Self.v(m.received(Self.body(3), now: Self.t0)) == .queue, "behind a queued head, everything queues")
        #expect(Self.v(m.received(.end(nil), now: Self.t0)) == .queue)
        #expect(Self.v(m.received(Self.head("/3"), now: Self.t0)) == .queue)
        #expect(Self.v(m.nextQueued()) == nil, "the callout of /1 is still running")
        #expect(!Self.v(m.readRequested(calloutHoldsReads: false, now: Self.t0)), "reads wait while parts are queued")
        #expect(Self.v(m.responseEnded(keepAlive: true, draining: false, now: Self.t0)) == .stay)
        #expect(Self.uri(m.nextQueued()) == "/2")
        if case .body = m.nextQueued() {} else { Issue.record("the body of /2 follows its head") }
        if case .end = m.nextQueued() {} else { Issue.record("then its end") }
        #expect(Self.v(m.nextQueued()) == nil, "/3 waits for /2's response")
        #expect(Self.v(m.responseEnded(keepAlive: true, draining: false, now: Self.t0)) == .stay)
        #expect(Self.uri(m.nextQueued()) == "/3")
        #expect(Self.v(m.nextQueued()) == nil)
        #expect(Self.v(m.resume(calloutHoldsReads: false, now: Self.t0)), "the queue is empty: the held read goes out")
    }

    @Test func heldReadsStopTheBodysClock() {
        var m = Self.machine()
        _ = m.received(Self.head(), now: Self.t0)
        #expect(!Self.v(m.readRequested(calloutHoldsReads: true, now: Self.t0 + .seconds(5))))
        #expect(m.clientDeadline == nil, "the client is not slow while the proxy holds its reads")
        #expect(!Self.v(m.resume(calloutHoldsReads: true, now: Self.t0 + .seconds(20))), "still held")
        #expect(Self.v(m.resume(calloutHoldsReads: false, now: Self.t0 + .seconds(25))))
        // 20 s held: the body's 30 s now count from t0 + 20 s.
        #expect(m.clientDeadline == Self.t0 + .seconds(50))
        #expect(!Self.v(m.resume(calloutHoldsReads: false, now: Self.t0 + .seconds(25))), "no read was pending")
        #expect(Self.v(m.readRequested(calloutHoldsReads: false, now: Self.t0 + .seconds(26))))
    }

    @Test func anUpgradeRequestIsTheLastOneRead() {
        var m = Self.machine()
        #expect(Self.v(m.received(Self.head(upgrade: true), now: Self.t0)) == .deliver)
        #expect(Self.v(m.readRequested(calloutHoldsReads: false, now: Self.t0)), "its body is still read")
        _ = m.received(.end(nil), now: Self.t0)
        #expect(!Self.v(m.readRequested(calloutHoldsReads: false, now: Self.t0)), "nothing after it")
    }

    @Test func aClosingResponseDropsWhatFollowsAndLingersOnlyWhenInputWasLeftUnread() {
        var whole = Self.machine()
        _ = whole.received(Self.head(), now: Self.t0)
        _ = whole.received(.end(nil), now: Self.t0)
        #expect(Self.v(whole.responseEnded(keepAlive: false, draining: false, now: Self.t0)) == .close(linger: false))
        #expect(whole.isClosing)
        #expect(Self.v(whole.received(Self.head(), now: Self.t0)) == .drop)
        #expect(whole.clientDeadline == Self.t0 + .seconds(60), "a client that stops reading is cut off")

        var early = Self.machine()
        _ = early.received(Self.head(), now: Self.t0)
        _ = early.received(Self.body(10), now: Self.t0)
        #expect(Self.v(early.responseEnded(keepAlive: false, draining: false, now: Self.t0)) == .close(linger: true))

        var pipelined = Self.machine()
        _ = pipelined.received(Self.head("/1"), now: Self.t0)
        _ = pipelined.received(.end(nil), now: Self.t0)
        _ = pipelined.received(Self.head("/2"), now: Self.t0)
        #expect(Self.v(pipelined.responseEnded(keepAlive: false, draining: false, now: Self.t0)) == .close(linger: true))
        #expect(Self.v(pipelined.nextQueued()) == nil, "the queue is dropped")
    }

    @Test func drainingEndsTheConnectionAfterTheResponseInProgress() {
        var m = Self.machine()
        _ = m.received(Self.head(), now: Self.t0)
        _ = m.received(.end(nil), now: Self.t0)
        #expect(!m.isIdle, "a busy connection is not closed at once")
        #expect(Self.v(m.responseEnded(keepAlive: true, draining: true, now: Self.t0)) == .close(linger: false))
    }

    @Test func aParseErrorIsAnsweredOnceAndNeverAfterAResponseBegan() {
        var m = Self.machine()
        #expect(Self.v(m.parseError(.headerOverflow, channelActive: true, now: Self.t0)) == .answer)
        #expect(m.isClosing)
        #expect(Self.v(m.parseError(.invalidChunkSize, channelActive: true, now: Self.t0)) == .close, "once")

        var responding = Self.machine()
        _ = responding.received(Self.head(), now: Self.t0)
        responding.responseHeadWritten()
        #expect(Self.v(responding.parseError(.invalidChunkSize, channelActive: true, now: Self.t0)) == .close)

        var gone = Self.machine()
        #expect(Self.v(gone.parseError(.invalidEOFState, channelActive: true, now: Self.t0)) == .close)
        var inactive = Self.machine()
        #expect(Self.v(inactive.parseError(.invalidVersion, channelActive: false, now: Self.t0)) == .close)
    }

    @Test func anAbortedOrClosedConnectionTakesNothingMore() {
        var aborted = Self.machine()
        _ = aborted.received(Self.head(), now: Self.t0)
        aborted.aborted()
        #expect(Self.v(aborted.received(Self.body(1), now: Self.t0)) == .drop)
        var closed = Self.machine()
        closed.closed()
        #expect(closed.clientDeadline == nil)
        #expect(!Self.v(closed.clientDeadlinePassed(now: Self.t0 + .seconds(100))))
    }
}
