import CalloutCore
import NIOCore

/// One callout as states and events: from the routed request head to the end of its response,
/// through the token, the upstream connection, one refresh-and-replay and one stale-connection
/// retry. No channel, no clock, no pool: events come in, an ``Action`` comes out, and
/// ``CalloutExchange`` performs it. Every state carries the data it needs, so a callout cannot be,
/// say, delivering a response and waiting for a token at once.
///
/// A body that fits the replay buffer is collected first and sent whole, and can be sent again
/// after a refresh; a larger one is streamed once the upstream connection is ready and is not
/// replayed.
struct CalloutStateMachine {
    /// More of a refused response than this is not read: a fresh connection is cheaper.
    static let discardLimit = 1 << 20

    let request: Request
    private(set) var state = State.idle

    init(_ request: Request) {
        self.request = request
    }

    // MARK: - Caller

    /// The request head was routed and may go on; `framing` is what its head says of the body.
    mutating func routed(framing: BodyFraming, expectsContinue: Bool) -> Action {
        guard case .idle = state else { return .none }
        let sendContinue = expectsContinue && framing != .empty
        if case .length(let n) = framing {
            if n > Int64(request.maxBodyBytes) { return fail(.bodyTooLarge, bodyRead: false) }
            if n > Int64(request.replayBufferBytes) {
                // Too large to buffer: streamed from the start.
                let stream = Stream(declaredLength: n, bytes: 0, pending: [], ended: false, flowing: false)
                state = .awaitingToken(Attempt(body: .streamed(stream)))
                return .obtainToken(sendContinue: sendContinue)
            }
        }
        state = .collecting(ByteBuffer())
        return .readBody(sendContinue: sendContinue)
    }

    /// The request is refused at its head; `bodyRead`: nothing of it remains to be read.
    mutating func refused(_ problem: Problem, bodyRead: Bool) -> Action {
        guard case .idle = state else { return .none }
        return fail(.refused(problem), bodyRead: bodyRead)
    }

    mutating func bodyPart(_ part: ByteBuffer) -> Action {
        switch state {
        case .collecting(var buffer):
            state = .finished  // `buffer` is the only reference while it grows
            var part = part
            buffer.writeBuffer(&part)
            if buffer.readableBytes > request.maxBodyBytes { return fail(.bodyTooLarge, bodyRead: false) }
            guard buffer.readableBytes > request.replayBufferBytes else {
                state = .collecting(buffer)
                return .none
            }
            let stream = Stream(
                declaredLength: nil, bytes: buffer.readableBytes, pending: [buffer], ended: false, flowing: false)
            state = .awaitingToken(Attempt(body: .streamed(stream)))
            return .obtainToken(sendContinue: false)
        case .awaitingToken, .connecting, .awaitingHead, .delivering:
            var forward = false
            var tooLarge = false
            let limit = request.maxBodyBytes
            updateStream { stream in
                stream.bytes += part.readableBytes
                if stream.bytes > limit {
                    tooLarge = true
                } else if stream.flowing {
                    forward = true
                } else {
                    stream.pending.append(part)
                }
            }
            if tooLarge {
                if case .delivering = state { return abort(cause: nil) }
                return fail(.bodyTooLarge, bodyRead: false)
            }
            return forward ? .forwardBodyPart(part) : .none
        case .idle, .discarding, .finished:
            // Parts of a request already answered are dropped.
            return .none
        }
    }

    mutating func bodyEnd() -> Action {
        switch state {
        case .collecting(let buffer):
            state = .awaitingToken(Attempt(body: .buffered(buffer.readableBytes == 0 ? nil : buffer)))
            return .obtainToken(sendContinue: false)
        case .awaitingToken, .connecting, .awaitingHead, .delivering:
            var forward = false
            updateStream { stream in
                stream.ended = true
                forward = stream.flowing
            }
            return forward ? .forwardBodyEnd : .none
        case .idle, .discarding, .finished:
            return .none
        }
    }

    mutating func clientClosed() -> Action {
        if case .finished = state { return .none }
        state = .finished
        return .abandon
    }

    // MARK: - Token

    mutating func tokenReady() -> Action {
        guard case .awaitingToken(let attempt) = state else { return .none }
        state = .connecting(attempt)
        return .connect(fresh: false, body: attempt.body.outgoing)
    }

    mutating func tokenFailed(_ error: any Error) -> Action {
        guard case .awaitingToken = state else { return .none }
        return fail(.token(error))
    }

    // MARK: - Upstream

    /// A formula or header could not be rendered for the upstream request.
    mutating func requestNotBuilt(_ problem: Problem) -> Action {
        guard case .connecting = state else { return .none }
        return fail(.refused(problem))
    }

    mutating func connected(reused: Bool) -> Action {
        guard case .connecting(var attempt) = state else { return .returnConnection }
        switch attempt.body {
        case .buffered:
            state = .awaitingHead(attempt, reused: reused)
            return .sendRequest(streamedParts: nil, end: true)
        case .streamed(var stream):
            attempt.body = .buffered(nil)
            let parts = stream.pending
            stream.pending = []
            stream.flowing = true
            attempt.body = .streamed(stream)
            state = .awaitingHead(attempt, reused: reused)
            return .sendRequest(streamedParts: parts, end: stream.ended)
        }
    }

    /// The connection the pool gave closed before it carried anything: another, a new one.
    mutating func connectionClosedBeforeUse() -> Action {
        guard case .connecting(let attempt) = state else { return .none }
        return .connect(fresh: true, body: attempt.body.outgoing)
    }

    mutating func connectFailed(_ error: any Error) -> Action {
        guard case .connecting = state else { return .none }
        return fail(.upstream(error))
    }

    /// Which retry the next response may cause: 1 on the first answer, 2 after a replay.
    var attemptNumber: Int {
        if case .awaitingHead(let attempt, _) = state, attempt.refreshed { return 2 }
        return 1
    }

    /// Whether the whole request body can be sent again.
    var bodyReplayable: Bool {
        switch state {
        case .awaitingToken(let a), .connecting(let a), .awaitingHead(let a, _), .discarding(let a, _, _):
            return a.body.replayable
        case .delivering(let delivery): return delivery.body.replayable
        case .idle, .collecting, .finished: return true
        }
    }

    /// - Parameters:
    ///   - decision: ``RetryDecision`` for this answer (``attemptNumber``, ``bodyReplayable``).
    ///   - endsClientConnection: the response can only end with the caller's connection.
    mutating func upstreamHead(decision: RetryDecision, upstreamKeepAlive: Bool, endsClientConnection: Bool)
        -> Action
    {
        guard case .awaitingHead(let attempt, _) = state else { return .none }
        if decision == .refreshAndReplay, !attempt.refreshed, attempt.body.replayable {
            state = .discarding(attempt, bytes: 0, upstreamKeepAlive: upstreamKeepAlive)
            return .discardResponse
        }
        state = .delivering(
            Delivery(
                body: attempt.body, upstreamKeepAlive: upstreamKeepAlive, endsClientConnection: endsClientConnection))
        return .deliverHead
    }

    mutating func upstreamBodyPart(_ part: ByteBuffer) -> Action {
        switch state {
        case .delivering:
            return .deliverBodyPart(part)
        case .discarding(let attempt, let bytes, let keepAlive):
            let total = bytes + part.readableBytes
            guard total > Self.discardLimit else {
                state = .discarding(attempt, bytes: total, upstreamKeepAlive: keepAlive)
                return .none
            }
            return replay(attempt, .abandon)
        default:
            return .none
        }
    }

    mutating func upstreamEnd() -> Action {
        switch state {
        case .discarding(let attempt, _, let keepAlive):
            return replay(attempt, .release(reusable: keepAlive))
        case .delivering(let delivery):
            state = .finished
            let complete = delivery.body.complete
            return .finish(
                reuseConnection: delivery.upstreamKeepAlive && complete,
                keepClientConnection: request.clientKeepAlive && complete && !delivery.endsClientConnection)
        default:
            return .none
        }
    }

    /// The upstream connection failed (and is gone) during the exchange.
    /// - Parameter connectionLost: the failure is the connection closing or resetting, which on a
    ///   reused connection means the upstream closed it before it saw the request.
    mutating func upstreamFailed(_ error: any Error, connectionLost: Bool) -> Action {
        switch state {
        case .discarding(let attempt, _, _):
            return replay(attempt, .none)
        case .awaitingHead(var attempt, let reused):
            guard
                MessageRules.retriesOnFreshConnection(
                    method: request.method, connectionWasReused: reused, bodyReplayable: attempt.body.replayable,
                    alreadyRetried: attempt.staleRetried, connectionLost: connectionLost)
            else { return fail(.upstream(error)) }
            attempt.staleRetried = true
            state = .connecting(attempt)
            return .connect(fresh: true, body: attempt.body.outgoing)
        case .delivering:
            return abort(cause: error)
        default:
            return .none
        }
    }

    // MARK: - Time

    /// Which limit applies now.
    enum Timing: Equatable {
        /// None of the callout's own: the client connection's limits apply.
        case none
        /// `request_timeout_seconds` from the first token request to the response head.
        case untilResponseHead
        /// The same span, as the longest silence while the response body flows.
        case silence
    }

    var timing: Timing {
        switch state {
        case .awaitingToken, .connecting, .awaitingHead, .discarding: return .untilResponseHead
        case .delivering: return .silence
        case .idle, .collecting, .finished: return .none
        }
    }

    /// The limit of ``timing`` passed (for `.silence`, with no byte in that span).
    mutating func deadlinePassed() -> Action {
        if case .awaitingToken = state { return fail(.tokenTimedOut) }
        switch timing {
        case .untilResponseHead: return fail(.timedOut)
        case .silence: return abort(cause: UpstreamTimeoutError())
        case .none: return .none
        }
    }

    // MARK: - Reads

    /// Client reads wait: a streamed body has nowhere to go until the upstream request is written.
    var streamWaitsForUpstream: Bool {
        switch state {
        case .awaitingToken(let a), .connecting(let a), .awaitingHead(let a, _):
            if case .streamed(let stream) = a.body { return !stream.flowing }
            return false
        default:
            return false
        }
    }

    /// A streamed body is going up: client reads follow the upstream connection's writability.
    var streamFlows: Bool {
        switch state {
        case .awaitingHead(let a, _):
            if case .streamed(let stream) = a.body { return stream.flowing }
        case .delivering(let delivery):
            if case .streamed(let stream) = delivery.body { return stream.flowing }
        default: break
        }
        return false
    }

    var isDelivering: Bool {
        if case .delivering = state { return true }
        return false
    }

    var isFinished: Bool {
        if case .finished = state { return true }
        return false
    }

    // MARK: - Transitions

    private mutating func replay(_ attempt: Attempt, _ release: ConnectionRelease) -> Action {
        var attempt = attempt
        attempt.refreshed = true
        state = .awaitingToken(attempt)
        return .refreshToken(release)
    }

    private mutating func fail(_ failure: CalloutFailure, bodyRead: Bool? = nil) -> Action {
        let read: Bool
        switch state {
        case .awaitingToken(let a), .connecting(let a), .awaitingHead(let a, _), .discarding(let a, _, _):
            read = bodyRead ?? a.body.complete
        case .idle, .collecting, .delivering, .finished:
            read = bodyRead ?? false
        }
        state = .finished
        return .fail(failure, keepClientConnection: read && request.clientKeepAlive)
    }

    private mutating func abort(cause: (any Error)?) -> Action {
        state = .finished
        return .abort(cause: cause)
    }

    /// Applies `update` to the streamed body of the state that carries one, without copying its
    /// parts.
    private mutating func updateStream(_ update: (inout Stream) -> Void) {
        func apply(_ body: inout Body) {
            guard case .streamed(var stream) = body else { return }
            body = .buffered(nil)
            update(&stream)
            body = .streamed(stream)
        }
        switch state {
        case .awaitingToken(var a):
            state = .finished
            apply(&a.body)
            state = .awaitingToken(a)
        case .connecting(var a):
            state = .finished
            apply(&a.body)
            state = .connecting(a)
        case .awaitingHead(var a, let reused):
            state = .finished
            apply(&a.body)
            state = .awaitingHead(a, reused: reused)
        case .delivering(var delivery):
            state = .finished
            apply(&delivery.body)
            state = .delivering(delivery)
        case .idle, .collecting, .discarding, .finished:
            break
        }
    }
}
