/// What the proxy needs to answer a caller when a token could not be had.
///
/// Descriptions of conforming errors never contain an access token or a client assertion.
public protocol TokenAcquisitionError: Error {
    /// Stable machine-readable code for `application/problem+json` (e.g.
    /// `identity_provider_unavailable`).
    var code: String { get }
    /// Status the proxy should answer its caller with (502, 503 or 504).
    var httpStatus: Int { get }
    /// Seconds the caller should wait before trying again, when known.
    var retryAfterSeconds: Double? { get }
}

/// Errors raised by the cache itself.
public enum TokenCacheError: TokenAcquisitionError, CustomStringConvertible {
    /// The identity provider failed recently for this key; requests fail fast until the backoff
    /// window ends. Carries the seconds remaining and the failure that started the window.
    case backingOff(retryAfterSeconds: Double, lastError: any Error)

    public var code: String {
        switch self {
        case .backingOff(_, let lastError):
            (lastError as? any TokenAcquisitionError)?.code ?? "identity_provider_unavailable"
        }
    }

    public var httpStatus: Int {
        switch self {
        case .backingOff(_, let lastError): (lastError as? any TokenAcquisitionError)?.httpStatus ?? 503
        }
    }

    public var retryAfterSeconds: Double? {
        switch self {
        case .backingOff(let seconds, _): seconds
        }
    }

    public var description: String {
        switch self {
        case .backingOff(let seconds, let lastError):
            "token requests are backing off for \(formatSeconds(seconds)) after: \(lastError)"
        }
    }
}
