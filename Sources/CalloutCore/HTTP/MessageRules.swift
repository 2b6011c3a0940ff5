/// The HTTP/1.1 rules a proxy decides per message, apart from any socket.
public enum MessageRules {
    /// RFC 9110 §9.2.2: methods a client (and so a proxy) may send again after a connection failed.
    public static func isIdempotent(method: String) -> Bool {
        switch method {
        case "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE": return true
        default: return false
        }
    }

    /// A request sent on a kept-alive connection the upstream had already closed is tried once more
    /// on a new connection, if it is idempotent and its body can be sent again: the upstream may
    /// have acted on anything else (RFC 9110 §9.2.2, RFC 9112 §9.3.1).
    public static func retriesOnFreshConnection(
        method: String, connectionWasReused: Bool, bodyReplayable: Bool, alreadyRetried: Bool, connectionLost: Bool
    ) -> Bool {
        connectionWasReused && bodyReplayable && !alreadyRetried && connectionLost && isIdempotent(method: method)
    }

    /// What an `Expect` header asks of the proxy (RFC 9110 §10.1.1).
    public enum Expectation: Equatable, Sendable {
        /// No `Expect` header.
        case none
        /// `100-continue`: answered by the proxy itself once the request is known to be acceptable,
        /// so a refused request never makes its client send the body.
        case continueBeforeBody
        /// Anything else: 417 Expectation Failed.
        case unsupported
    }

    public static func expectation(_ value: String?) -> Expectation {
        guard let value else { return .none }
        return value.caseInsensitiveEquals("100-continue") ? .continueBeforeBody : .unsupported
    }

    /// A response that has no body whatever its headers say (RFC 9112 §6.3): to HEAD, 1xx, 204, 304.
    public static func isBodiless(requestIsHEAD: Bool, status: Int) -> Bool {
        requestIsHEAD || status < 200 || status == 204 || status == 304
    }

    /// An HTTP/1.0 caller cannot take a chunked body: a response to it without a Content-Length
    /// ends with the connection (RFC 9112 §6.3, item 8).
    public static func responseEndsConnection(callerIsHTTP10: Bool, bodiless: Bool, hasContentLength: Bool) -> Bool {
        callerIsHTTP10 && !bodiless && !hasContentLength
    }
}
