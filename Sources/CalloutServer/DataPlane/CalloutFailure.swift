import CalloutCore
import NIOCore
import NIOHTTP1

/// Why a callout ends with a problem instead of the upstream's answer: the one mapping from the
/// data plane's failures to the problems callers get and the reasons logs give.
enum CalloutFailure {
    /// Refused before anything was sent: routing, framing, an expectation, a formula.
    case refused(Problem)
    /// The request body outgrew `max_request_body_bytes`.
    case bodyTooLarge
    /// No token: the identity provider failed, refused or was unreachable.
    case token(any Error)
    /// No upstream answer: connection, TLS, a closed or out-of-step connection.
    case upstream(any Error)
    /// `request_timeout_seconds` passed while waiting for a token.
    case tokenTimedOut
    /// `request_timeout_seconds` passed on the way to the response head after the token came.
    case timedOut
    /// The client's bytes are not HTTP/1.1 the proxy accepts (NIO's parser refused them).
    case malformed(HTTPParserError)

    /// Names what the caller and logs may see: never a header value, a token or a body.
    struct Context {
        var namedCredential: String?
        var maxRequestBodyBytes: Int
        var requestTimeoutSeconds: Int
        var maxHeaderBytes: Int
        var connectTimeoutSeconds: Int = ProxySettings().connectTimeoutSeconds
    }

    func problem(_ context: Context) -> Problem {
        switch self {
        case .refused(let problem):
            return problem
        case .bodyTooLarge:
            return .requestTooLarge(limit: context.maxRequestBodyBytes)
        case .token(let error):
            // The token layer describes its own failures (`TokenService.problem`); anything else
            // is told without its text, which might carry what the identity provider said.
            return error as? Problem
                ?? Problem(
                    status: 502, code: "identity_provider_unavailable", title: "Identity provider unavailable",
                    detail: "the token request failed", namedCredential: context.namedCredential)
        case .upstream(let error):
            let (timeout, reason) = UpstreamFailure.describe(error)
            let alias = context.namedCredential ?? "-"
            if case ChannelError.connectTimeout = error {
                return .upstreamConnectTimeout(alias, seconds: context.connectTimeoutSeconds)
            }
            return timeout
                ? .upstreamTimeout(alias, seconds: context.requestTimeoutSeconds)
                : .upstreamUnavailable(alias, reason: reason)
        case .tokenTimedOut:
            // As when the identity provider client's own timeout ends the wait.
            return Problem(
                status: 504, code: "identity_provider_unavailable", title: "Identity provider unavailable",
                detail: "no token within request_timeout_seconds (\(context.requestTimeoutSeconds) s)",
                namedCredential: context.namedCredential)
        case .timedOut:
            return .upstreamTimeout(context.namedCredential ?? "-", seconds: context.requestTimeoutSeconds)
        case .malformed(let error):
            return error == .headerOverflow
                ? .headersTooLarge(limit: context.maxHeaderBytes) : .badRequest("malformed HTTP request")
        }
    }

    /// The access log's `upstream_failure`, for failures on the way to the upstream.
    var upstreamReason: String? {
        switch self {
        case .upstream(let error): return UpstreamFailure.describe(error).reason
        case .timedOut: return "timed out"
        default: return nil
        }
    }
}
