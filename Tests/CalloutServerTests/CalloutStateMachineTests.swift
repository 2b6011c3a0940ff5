import CalloutCore
import NIOCore
import Testing

@testable import CalloutServer

/// Every transition of ``CalloutStateMachine``, without a socket, a clock or a pool.
@Suite struct CalloutStateMachineTests {
    typealias Machine = CalloutStateMachine

    static func machine(
        method: String = "GET", keepAlive: Bool = true, maxBody: Int = 1000, replayBuffer: Int = 100
    ) -> Machine {
        Machine(
            .init(method: method, clientKeepAlive: keepAlive, maxBodyBytes: maxBody, replayBufferBytes: replayBuffer))
    }

    static func bytes(_ n: Int) -> ByteBuffer { ByteBuffer(repeating: 0x61, count: n) }

    /// Actions carry errors, which are not comparable: tests compare what each action says.
    static func describe(_ action: Machine.Action) -> String {
        switch action {
        case .none: return "none"
        case .readBody(let c): return "readBody(continue: \(c))"
        case .obtainToken(let c): return "obtainToken(continue: \(c))"
        case .refreshToken(let release): return "refreshToken(\(release))"
        case .connect(let fresh, let body):
            switch body {
            case .buffered(let b): return "connect(fresh: \(fresh), buffered: \(b?.readableBytes ?? 0))"
            case .streamed(let n): return "connect(fresh: \(fresh), streamed: \(n.map(String.init) ?? "?"))"
            }
        case .returnConnection: return "returnConnection"
        case .sendRequest(let parts, let end):
            return "sendRequest(parts: \(parts.map { "\($0.map(\.readableBytes))" } ?? "buffered"), end: \(end))"
        case .forwardBodyPart(let part): return "forwardBodyPart(\(part.readableBytes))"
        case .forwardBodyEnd: return "forwardBodyEnd"
        case .discardResponse: return "discardResponse"
        case .deliverHead: return "deliverHead"
        case .deliverBodyPart(let part): return "deliverBodyPart(\(part.readableBytes))"
        case .finish(let reuse, let keep): return "finish(reuse: \(reuse), keepClient: \(keep))"
        case .fail(let failure, let keep):
            let kind: String
            switch failure {
            case .refused(let p): kind = "refused(\(p.status))"
            case .bodyTooLarge: kind = "bodyTooLarge"
            case .token: kind = "token"
            case .upstream: kind = "upstream"
            case .timedOut: kind = "timedOut"
            case .tokenTimedOut: kind = "tokenTimedOut"
            case .malformed: kind = "malformed"
            }
            return "fail(\(kind), keepClient: \(keep))"
        case .abort(let cause): return cause == nil ? "abort" : "abort(cause)"
        case .abandon: return "abandon"
        }
    }

    struct Closed: Error {}

    /// A bodiless GET up to the point its request is on a connection.
    static func sentGET(reused: Bool = false, method: String = "GET", keepAlive: Bool = true) -> Machine {
        var m = machine(method: method, keepAlive: keepAlive)
        #expect(describe(m.routed(framing: .empty, expectsContinue: false)) == "readBody(continue: false)")
        #expect(describe(m.bodyEnd()) == "obtainToken(continue: false)")
        #expect(describe(m.tokenReady()) == "connect(fresh: false, buffered: 0)")
        #expect(describe(m.connected(reused: reused)) == "sendRequest(parts: buffered, end: true)")
        return m
    }

    static func head(_ m: inout Machine, _ decision: RetryDecision, keepAlive: Bool = true, ends: Bool = false)
        -> String
    {
        describe(m.upstreamHead(decision: decision, upstreamKeepAlive: keepAlive, endsClientConnection: ends))
    }

    @Test func aBodilessCalloutGoesThroughEveryStepOnce() {
        var m = Self.sentGET()
        #expect(m.timing == .untilResponseHead)
        #expect(m.attemptNumber == 1)
        #expect(Self.head(&m, .deliver) == "deliverHead")
        #expect(m.timing == .silence)
        #expect(Self.describe(m.upstreamBodyPart(Self.bytes(5))) == "deliverBodyPart(5)")
        #expect(Self.describe(m.upstreamEnd()) == "finish(reuse: true, keepClient: true)")
        #expect(m.isFinished)
        #expect(m.timing == .none)
        // Anything after the end is ignored.
        #expect(Self.describe(m.upstreamEnd()) == "none")
        #expect(Self.describe(m.bodyPart(Self.bytes(1))) == "none")
        #expect(Self.describe(m.clientClosed()) == "none")
    }

    @Test func aRefreshStatusDiscardsTheAnswerRefreshesAndReplaysOnce() {
        var m = Self.sentGET()
        #expect(Self.head(&m, .refreshAndReplay) == "discardResponse")
        #expect(Self.describe(m.upstreamBodyPart(Self.bytes(10))) == "none", "the refused body is not delivered")
        #expect(Self.describe(m.upstreamEnd()) == "refreshToken(release(reusable: true))")
        #expect(Self.describe(m.tokenReady()) == "connect(fresh: false, buffered: 0)")
        #expect(Self.describe(m.connected(reused: true)) == "sendRequest(parts: buffered, end: true)")
        #expect(m.attemptNumber == 2)
        // The second answer is delivered whatever it is.
        #expect(Self.head(&m, .refreshAndReplay) == "deliverHead")
        #expect(Self.describe(m.upstreamEnd()) == "finish(reuse: true, keepClient: true)")
    }

    @Test func aRefusalTooLongToReadIsCutShort() {
        var m = Self.sentGET()
        #expect(Self.head(&m, .refreshAndReplay, keepAlive: false) == "discardResponse")
        #expect(Self.describe(m.upstreamBodyPart(Self.bytes(Machine.discardLimit))) == "none")
        #expect(Self.describe(m.upstreamBodyPart(Self.bytes(1))) == "refreshToken(abandon)")
        #expect(m.timing == .untilResponseHead, "the token wait is timed")
    }

    @Test func aConnectionLostWhileDiscardingStillReplays() {
        var m = Self.sentGET()
        _ = Self.head(&m, .refreshAndReplay)
        #expect(Self.describe(m.upstreamFailed(Closed(), connectionLost: true)) == "refreshToken(none)")
    }

    @Test func aStalePooledConnectionIsRetriedOnceOnAFreshOne() {
        var m = Self.sentGET(reused: true)
        #expect(Self.describe(m.upstreamFailed(Closed(), connectionLost: true)) == "connect(fresh: true, buffered: 0)")
        #expect(Self.describe(m.connected(reused: true)) == "sendRequest(parts: buffered, end: true)")
        #expect(
            Self.describe(m.upstreamFailed(Closed(), connectionLost: true)) == "fail(upstream, keepClient: true)",
            "only once")
    }

    @Test func noStaleRetryForANewConnectionANonIdempotentMethodOrAnotherFailure() {
        var fresh = Self.sentGET(reused: false)
        #expect(
            Self.describe(fresh.upstreamFailed(Closed(), connectionLost: true)) == "fail(upstream, keepClient: true)")
        var post = Self.sentGET(reused: true, method: "POST")
        #expect(
            Self.describe(post.upstreamFailed(Closed(), connectionLost: true)) == "fail(upstream, keepClient: true)")
        var tls = Self.sentGET(reused: true)
        #expect(
            Self.describe(tls.upstreamFailed(Closed(), connectionLost: false)) == "fail(upstream, keepClient: true)")
        var closing = Self.sentGET(reused: false, keepAlive: false)
        #expect(
            Self.describe(closing.upstreamFailed(Closed(), connectionLost: true)) == "fail(upstream, keepClient: false)"
        )
    }

    @Test func aFailureAfterTheHeadAbortsTheCallersConnection() {
        var m = Self.sentGET()
        _ = Self.head(&m, .deliver)
        #expect(Self.describe(m.upstreamFailed(Closed(), connectionLost: true)) == "abort(cause)")
        #expect(m.isFinished)
    }

    @Test func aSmallBodyIsCollectedThenSentWhole() {
        var m = Self.machine(method: "POST")
        #expect(Self.describe(m.routed(framing: .length(60), expectsContinue: true)) == "readBody(continue: true)")
        #expect(m.timing == .none, "the client's own limits time the body")
        #expect(Self.describe(m.bodyPart(Self.bytes(30))) == "none")
        #expect(Self.describe(m.bodyPart(Self.bytes(30))) == "none")
        #expect(Self.describe(m.bodyEnd()) == "obtainToken(continue: false)")
        #expect(m.bodyReplayable)
        #expect(Self.describe(m.tokenReady()) == "connect(fresh: false, buffered: 60)")
    }

    @Test func aDeclaredLargeBodyStreamsFromTheStartAndIsNotReplayed() {
        var m = Self.machine(method: "POST")
        #expect(Self.describe(m.routed(framing: .length(500), expectsContinue: true)) == "obtainToken(continue: true)")
        #expect(!m.bodyReplayable)
        #expect(m.streamWaitsForUpstream)
        #expect(Self.describe(m.bodyPart(Self.bytes(200))) == "none")
        #expect(Self.describe(m.tokenReady()) == "connect(fresh: false, streamed: 500)")
        #expect(Self.describe(m.bodyPart(Self.bytes(100))) == "none")
        #expect(Self.describe(m.connected(reused: true)) == "sendRequest(parts: [200, 100], end: false)")
        #expect(!m.streamWaitsForUpstream)
        #expect(m.streamFlows)
        #expect(Self.describe(m.bodyPart(Self.bytes(200))) == "forwardBodyPart(200)")
        #expect(Self.describe(m.bodyEnd()) == "forwardBodyEnd")
        // A refresh status on a streamed body is delivered (the decision says so; the machine agrees).
        #expect(Self.head(&m, .refreshAndReplay) == "deliverHead")
        #expect(Self.describe(m.upstreamEnd()) == "finish(reuse: true, keepClient: true)")
    }

    @Test func aChunkedBodyOutgrowingTheReplayBufferSwitchesToStreaming() {
        var m = Self.machine(method: "POST")
        #expect(Self.describe(m.routed(framing: .chunked, expectsContinue: false)) == "readBody(continue: false)")
        #expect(Self.describe(m.bodyPart(Self.bytes(80))) == "none")
        #expect(Self.describe(m.bodyPart(Self.bytes(80))) == "obtainToken(continue: false)")
        #expect(!m.bodyReplayable)
        #expect(Self.describe(m.bodyEnd()) == "none")
        #expect(Self.describe(m.tokenReady()) == "connect(fresh: false, streamed: ?)")
        #expect(Self.describe(m.connected(reused: false)) == "sendRequest(parts: [160], end: true)")
    }

    @Test func aResponseBeforeTheStreamedBodyEndedClosesBothConnections() {
        var m = Self.machine(method: "PUT")
        _ = m.routed(framing: .length(500), expectsContinue: false)
        _ = m.tokenReady()
        _ = m.connected(reused: false)
        #expect(Self.head(&m, .deliver) == "deliverHead")
        #expect(Self.describe(m.bodyPart(Self.bytes(10))) == "forwardBodyPart(10)", "the body still goes up")
        #expect(Self.describe(m.upstreamEnd()) == "finish(reuse: false, keepClient: false)")
    }

    @Test func bodyLimitsRefuseBeforeTheResponseAndAbortAfter() {
        var declared = Self.machine()
        #expect(
            Self.describe(declared.routed(framing: .length(1001), expectsContinue: true))
                == "fail(bodyTooLarge, keepClient: false)")
        var collected = Self.machine(replayBuffer: 1000)
        _ = collected.routed(framing: .chunked, expectsContinue: false)
        #expect(Self.describe(collected.bodyPart(Self.bytes(1001))) == "fail(bodyTooLarge, keepClient: false)")
        var streamed = Self.machine()
        _ = streamed.routed(framing: .chunked, expectsContinue: false)
        _ = streamed.bodyPart(Self.bytes(600))
        #expect(Self.describe(streamed.bodyPart(Self.bytes(401))) == "fail(bodyTooLarge, keepClient: false)")
        var delivering = Self.machine()
        _ = delivering.routed(framing: .chunked, expectsContinue: false)
        _ = delivering.bodyPart(Self.bytes(600))
        _ = delivering.tokenReady()
        _ = delivering.connected(reused: false)
        _ = Self.head(&delivering, .deliver)
        #expect(Self.describe(delivering.bodyPart(Self.bytes(401))) == "abort")
    }

    @Test func theDeadlineInEachState() {
        var idle = Self.machine()
        #expect(Self.describe(idle.deadlinePassed()) == "none")
        var collecting = Self.machine()
        _ = collecting.routed(framing: .chunked, expectsContinue: false)
        #expect(Self.describe(collecting.deadlinePassed()) == "none")
        var token = Self.machine()
        _ = token.routed(framing: .empty, expectsContinue: false)
        _ = token.bodyEnd()
        #expect(
            Self.describe(token.deadlinePassed()) == "fail(tokenTimedOut, keepClient: true)", "the token wait is timed")
        #expect(Self.describe(token.tokenReady()) == "none", "a token that comes late is not used")
        var connecting = Self.machine()
        _ = connecting.routed(framing: .empty, expectsContinue: false)
        _ = connecting.bodyEnd()
        _ = connecting.tokenReady()
        #expect(Self.describe(connecting.deadlinePassed()) == "fail(timedOut, keepClient: true)")
        #expect(Self.describe(connecting.connected(reused: false)) == "returnConnection")
        var head = Self.sentGET()
        #expect(Self.describe(head.deadlinePassed()) == "fail(timedOut, keepClient: true)")
        var discarding = Self.sentGET()
        _ = Self.head(&discarding, .refreshAndReplay)
        #expect(Self.describe(discarding.deadlinePassed()) == "fail(timedOut, keepClient: true)")
        var delivering = Self.sentGET()
        _ = Self.head(&delivering, .deliver)
        #expect(Self.describe(delivering.deadlinePassed()) == "abort(cause)")
        #expect(Self.describe(delivering.deadlinePassed()) == "none")
    }

    @Test func theClientClosingInEachState() {
        var machines: [Machine] = []
        machines.append(Self.machine())
        var collecting = Self.machine()
        _ = collecting.routed(framing: .chunked, expectsContinue: false)
        machines.append(collecting)
        var token = collecting
        _ = token.bodyEnd()
        machines.append(token)
        var connecting = token
        _ = connecting.tokenReady()
        machines.append(connecting)
        var head = Self.sentGET()
        machines.append(head)
        _ = Self.head(&head, .refreshAndReplay)
        machines.append(head)
        var delivering = Self.sentGET()
        _ = Self.head(&delivering, .deliver)
        machines.append(delivering)
        for var m in machines {
            #expect(Self.describe(m.clientClosed()) == "abandon")
            #expect(m.isFinished)
            #expect(Self.describe(m.tokenReady()) == "none")
            #expect(Self.describe(m.connected(reused: false)) == "returnConnection")
            #expect(Self.describe(m.upstreamEnd()) == "none")
            #expect(Self.describe(m.deadlinePassed()) == "none")
        }
    }

    @Test func failuresKeepTheCallersConnectionOnlyWhenTheBodyWasRead() {
        var refusedEmpty = Self.machine()
        #expect(
            Self.describe(refusedEmpty.refused(.badRequest("x"), bodyRead: true))
                == "fail(refused(400), keepClient: true)")
        var refusedUnread = Self.machine()
        #expect(
            Self.describe(refusedUnread.refused(.badRequest("x"), bodyRead: false))
                == "fail(refused(400), keepClient: false)")
        var tokenFailed = Self.machine(keepAlive: false)
        _ = tokenFailed.routed(framing: .empty, expectsContinue: false)
        _ = tokenFailed.bodyEnd()
        #expect(Self.describe(tokenFailed.tokenFailed(Closed())) == "fail(token, keepClient: false)")
        var streamedUnfinished = Self.machine()
        _ = streamedUnfinished.routed(framing: .length(500), expectsContinue: false)
        #expect(Self.describe(streamedUnfinished.tokenFailed(Closed())) == "fail(token, keepClient: false)")
        var notBuilt = Self.machine()
        _ = notBuilt.routed(framing: .empty, expectsContinue: false)
        _ = notBuilt.bodyEnd()
        _ = notBuilt.tokenReady()
        #expect(Self.describe(notBuilt.requestNotBuilt(.badRequest("f"))) == "fail(refused(400), keepClient: true)")
    }

    @Test func aConnectionClosedBeforeUseIsReplacedByAFreshOne() {
        var m = Self.machine()
        _ = m.routed(framing: .empty, expectsContinue: false)
        _ = m.bodyEnd()
        _ = m.tokenReady()
        #expect(Self.describe(m.connectionClosedBeforeUse()) == "connect(fresh: true, buffered: 0)")
        #expect(Self.describe(m.connectFailed(Closed())) == "fail(upstream, keepClient: true)")
    }

    @Test func aResponseThatEndsWithTheConnectionDoesNotKeepIt() {
        var m = Self.sentGET()
        #expect(Self.head(&m, .deliver, keepAlive: false, ends: true) == "deliverHead")
        #expect(Self.describe(m.upstreamEnd()) == "finish(reuse: false, keepClient: false)")
    }
}
