import CalloutCore
import NIOCore

/// The states, the data they carry and the actions of ``CalloutStateMachine``.
extension CalloutStateMachine {
    /// Facts fixed by the request head.
    struct Request {
        var method: String
        /// The caller's connection may carry another request after this one.
        var clientKeepAlive: Bool
        /// `max_request_body_bytes`.
        var maxBodyBytes: Int
        /// `retry_body_buffer_bytes`.
        var replayBufferBytes: Int
    }

    /// A body too large to buffer, on its way upstream.
    struct Stream: Equatable {
        var declaredLength: Int64?
        var bytes: Int
        /// Parts read before the upstream request was written.
        var pending: [ByteBuffer]
        /// The caller's body ended.
        var ended: Bool
        /// The upstream request is written: parts go up as they come.
        var flowing: Bool
    }

    enum Body: Equatable {
        /// Complete (`nil`: none); can be sent again.
        case buffered(ByteBuffer?)
        case streamed(Stream)

        var replayable: Bool {
            if case .streamed = self { return false }
            return true
        }

        /// The caller has sent all of it.
        var complete: Bool {
            switch self {
            case .buffered: return true
            case .streamed(let stream): return stream.ended
            }
        }

        var outgoing: Outgoing {
            switch self {
            case .buffered(let buffer): return .buffered(buffer)
            case .streamed(let stream): return .streamed(declaredLength: stream.declaredLength)
            }
        }
    }

    /// The body the upstream request is built with.
    enum Outgoing: Equatable {
        case buffered(ByteBuffer?)
        case streamed(declaredLength: Int64?)
    }

    struct Attempt: Equatable {
        var body: Body
        /// The one refresh-and-replay was used: the next answer is delivered whatever it is.
        var refreshed = false
        /// The one retry on a fresh connection after a stale pooled one was used.
        var staleRetried = false
    }

    struct Delivery: Equatable {
        var body: Body
        var upstreamKeepAlive: Bool
        /// The response ends with the caller's connection (HTTP/1.0 without a length).
        var endsClientConnection: Bool
    }

    enum State: Equatable {
        /// The request head is not routed yet.
        case idle
        /// Reading a body that may still fit the replay buffer (empty when there is none).
        case collecting(ByteBuffer)
        case awaitingToken(Attempt)
        /// Waiting for a pooled or new upstream connection.
        case connecting(Attempt)
        /// The request is written (a streamed body may still be going up); `reused`: on a
        /// connection that carried an exchange before.
        case awaitingHead(Attempt, reused: Bool)
        /// A refresh status: the refused response is read to its end before the replay.
        case discarding(Attempt, bytes: Int, upstreamKeepAlive: Bool)
        /// The caller has the response head; its body flows.
        case delivering(Delivery)
        case finished
    }

    /// What becomes of the upstream connection when a refusal is left for a refresh.
    enum ConnectionRelease: Equatable {
        /// Back to the pool, reusable or not.
        case release(reusable: Bool)
        /// Cut short: the refused response was too long to read to its end.
        case abandon
        /// Already gone.
        case none
    }

    enum Action {
        case none
        /// Read the request body; write `100 Continue` first when asked.
        case readBody(sendContinue: Bool)
        /// Take a cached token or fetch one (`tokenReady` / `tokenFailed` follow); write
        /// `100 Continue` first when asked.
        case obtainToken(sendContinue: Bool)
        /// Drop the token the upstream refused, then fetch another.
        case refreshToken(ConnectionRelease)
        /// Build the upstream request and take a connection: pooled unless `fresh`.
        case connect(fresh: Bool, body: Outgoing)
        /// A connection came after the callout ended: back to the pool.
        case returnConnection
        /// Write the request on the connection just taken: the buffered request, or the head,
        /// the streamed parts read so far and, when the caller's body ended, its end.
        case sendRequest(streamedParts: [ByteBuffer]?, end: Bool)
        case forwardBodyPart(ByteBuffer)
        case forwardBodyEnd
        /// A refresh status: read the response to its end, deliver nothing.
        case discardResponse
        case deliverHead
        case deliverBodyPart(ByteBuffer)
        /// The response ended: the connection back to the pool, the caller's response ended.
        case finish(reuseConnection: Bool, keepClientConnection: Bool)
        /// Answer with a problem; any wait or connection is abandoned.
        case fail(CalloutFailure, keepClientConnection: Bool)
        /// The caller already has the response head: abandon the upstream, close the caller's connection.
        case abort(cause: (any Error)?)
        /// The caller went away: stop waiting, abandon the upstream.
        case abandon
    }
}
