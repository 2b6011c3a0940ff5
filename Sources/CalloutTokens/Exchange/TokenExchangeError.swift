/// Why a token could not be had from the identity provider.
///
/// No case ever holds the client assertion or an access token: texts that come from the
/// identity provider or the transport are scrubbed of both, stripped of control characters and
/// truncated before they are stored here.
public enum TokenExchangeError: TokenAcquisitionError, Equatable, CustomStringConvertible {
    /// The identity provider refused the request (RFC 6749 §5.2), e.g. `invalid_client`.
    case rejected(status: Int, error: String, description: String?)
    /// 429, 503 or another 5xx; `retryAfter` in seconds when the provider sent `Retry-After`.
    case unavailable(status: Int, retryAfter: Double?)
    /// No answer: connection refused, TLS failure, connection closed.
    case unreachable(String)
    /// No complete answer before the deadline.
    case timedOut(String)
    /// An answer that is not a usable token response (bad JSON, no `access_token`, bad
    /// `expires_in`, body too large).
    case malformedResponse(String)
    /// A `token_type` other than Bearer that the proxy cannot use (e.g. `DPoP`).
    case unsupportedTokenType(String)
    /// The request could not be sent as configured (bad URL, reserved extra parameter).
    case invalidRequest(String)

    public var code: String {
        switch self {
        case .rejected, .malformedResponse, .unsupportedTokenType, .invalidRequest:
            "token_exchange_failed"
        case .unavailable, .unreachable, .timedOut:
            "identity_provider_unavailable"
        }
    }

    public var httpStatus: Int {
        switch self {
        case .rejected, .malformedResponse, .unsupportedTokenType, .invalidRequest, .unreachable: 502
        case .unavailable: 503
        case .timedOut: 504
        }
    }

    public var retryAfterSeconds: Double? {
        if case .unavailable(_, let retryAfter) = self { return retryAfter }
        return nil
    }

    public var description: String {
        switch self {
        case .rejected(let status, let error, let description):
            "identity provider rejected the token request: HTTP \(status) \(error)"
                + (description.map { ": \($0)" } ?? "")
        case .unavailable(let status, let retryAfter):
            "identity provider unavailable: HTTP \(status)"
                + (retryAfter.map { ", retry after \(formatSeconds($0))" } ?? "")
        case .unreachable(let reason):
            "identity provider unreachable: \(reason)"
        case .timedOut(let reason):
            "identity provider timed out: \(reason)"
        case .malformedResponse(let reason):
            "malformed token response: \(reason)"
        case .unsupportedTokenType(let type):
            "unsupported token_type \"\(type)\": only Bearer tokens are supported"
        case .invalidRequest(let reason):
            "invalid token request: \(reason)"
        }
    }
}

/// Cleans text that came from outside (an identity provider's `error_description`, a transport
/// error) before it goes into an error: removes every secret, drops control characters,
/// truncates to `limit` characters.
package func sanitize(_ text: String, removing secrets: [String], limit: Int) -> String {
    var cleaned = text
    for secret in secrets where secret.count >= 4 {
        cleaned = cleaned.replacing(secret, with: "<redacted>")
    }
    let printable = cleaned.unicodeScalars.filter { !($0.properties.generalCategory == .control) }
    var result = String(String.UnicodeScalarView(printable))
    if result.count > limit { result = String(result.prefix(limit)) + "…" }
    return result
}

/// Replaces every run of text shaped like a JWT or an opaque token with `<redacted>`: a run of
/// base64url / base64 / token characters (`A-Z a-z 0-9 - _ . ~ + / =`) that is either dotted
/// like a JWT (three parts, the first `eyJ…` or both of the first two 16+ characters) or 20+ characters long with both letters and
/// digits. Runs holding both `.` and `/` are paths or host names and stay; so do words.
package func redactingTokenLikeText(_ text: String) -> String {
    func isRunCharacter(_ c: Unicode.Scalar) -> Bool {
        switch c {
        case "A"..."Z", "a"..."z", "0"..."9", "-", "_", ".", "~", "+", "/", "=": true
        default: false
        }
    }
    func looksLikeToken(_ run: Substring.UnicodeScalarView) -> Bool {
        let text = String(run)
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 3, !text.contains("/"),
            parts[0].hasPrefix("eyJ") || (parts[0].count >= 16 && parts[1].count >= 16)
        {
            return true
        }
        guard run.count >= 20, !(text.contains(".") && text.contains("/")) else { return false }
        return run.contains { ("0"..."9").contains($0) }
            && run.contains { ("A"..."Z").contains($0) || ("a"..."z").contains($0) }
    }
    var out = String.UnicodeScalarView()
    let scalars = Substring(text).unicodeScalars
    var index = scalars.startIndex
    while index < scalars.endIndex {
        guard isRunCharacter(scalars[index]) else {
            out.append(scalars[index])
            index = scalars.index(after: index)
            continue
        }
        let end = scalars[index...].firstIndex { !isRunCharacter($0) } ?? scalars.endIndex
        let run = scalars[index..<end]
        if looksLikeToken(run) {
            out.append(contentsOf: "<redacted>".unicodeScalars)
        } else {
            out.append(contentsOf: run)
        }
        index = end
    }
    return String(out)
}
