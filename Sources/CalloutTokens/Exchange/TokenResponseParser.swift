import CalloutCore

/// Turns a token endpoint's HTTP answer into a ``TokenResponse`` or a ``TokenExchangeError``
/// (RFC 6749 §5.1 and §5.2). Pure: the status, `Retry-After` header, body and current Unix time
/// come in.
public struct TokenResponseParser: Sendable {
    public var limits: TokenEndpointClient.Limits
    /// Strings to scrub from every text taken from the answer (the assertion, and once known
    /// the access token).
    package var secrets: [String]

    package init(limits: TokenEndpointClient.Limits, secrets: [String]) {
        self.limits = limits
        self.secrets = secrets
    }

    public func parse(status: Int, retryAfter: String?, body: [UInt8], now: Double)
        throws(TokenExchangeError) -> TokenResponse
    {
        if status == 429 || status == 503 || (500...599).contains(status) {
            let seconds = retryAfter.flatMap { RetryAfter.seconds(from: $0, now: now) }
            throw .unavailable(status: status, retryAfter: status == 429 || status == 503 ? seconds : nil)
        }
        let json = JSONValue.object(from: body)
        guard (200...299).contains(status) else {
            let error = json?["error"]?.stringValue.map { clean($0, limit: 64) } ?? "http_\(status)"
            // The provider's text reaches callers in problem bodies: anything shaped like a JWT or
            // a token (an echoed assertion, another client's token) is cut out first.
            let description = json?["error_description"]?.stringValue.map {
                clean(redactingTokenLikeText($0), limit: limits.maxErrorDescriptionLength)
            }
            throw .rejected(status: status, error: error, description: description)
        }
        guard let json else { throw .malformedResponse("body is not a JSON object") }
        guard case .string(let accessToken)? = json["access_token"], !accessToken.isEmpty else {
            throw .malformedResponse("access_token missing or empty")
        }
        // RFC 6749 A.12: VSCHAR only. The token goes into a header; a CR or LF must never reach it.
        guard accessToken.utf8.allSatisfy({ $0 >= 0x20 && $0 <= 0x7E }) else {
            throw .malformedResponse("access_token has characters outside RFC 6749's VSCHAR")
        }
        guard case .string(let rawType)? = json["token_type"], !rawType.isEmpty else {
            throw .malformedResponse("token_type missing")
        }
        let tokenType: String
        if rawType.lowercased() == "bearer" {
            tokenType = "Bearer"
        } else if rawType.lowercased() == "dpop" || rawType.lowercased() == "n_a"
            || rawType.lowercased() == "mac"
        {
            throw .unsupportedTokenType(clean(rawType, limit: 32))
        } else if rawType.utf8.allSatisfy({ isTokenCharacter($0) }) {
            tokenType = rawType
        } else {
            throw .malformedResponse("token_type is not an HTTP auth scheme")
        }
        let expiresIn = try lifetime(json["expires_in"], accessToken: accessToken, now: now)
        var scope: String?
        if case .string(let granted)? = json["scope"] { scope = granted }
        return TokenResponse(
            accessToken: accessToken, tokenType: tokenType, scope: scope, expiresIn: expiresIn)
    }

    private func lifetime(_ value: JSONValue?, accessToken: String, now: Double)
        throws(TokenExchangeError) -> Int
    {
        let seconds: Double
        switch value {
        case .integer(let number)?:
            seconds = Double(number)
        case .number(let number)?:
            seconds = number
        case .string(let text)?:
            guard let number = Double(text.trimmingSpaces()), number.isFinite else {
                throw .malformedResponse("expires_in is not a number")
            }
            seconds = number
        case nil, .null?:
            // No expires_in: the token's own exp if it is a JWT, else the configured default.
            if let exp = JWTPayload.claims(of: accessToken)?["exp"]?.doubleValue {
                guard exp - now >= 1 else { throw .malformedResponse("access token's exp is in the past") }
                seconds = (exp - now).rounded(.down)
            } else {
                seconds = Double(limits.defaultLifetimeSeconds)
            }
        default:
            throw .malformedResponse("expires_in is not a number")
        }
        guard seconds.isFinite, seconds.rounded(.down) == seconds else {
            throw .malformedResponse("expires_in must be an integer")
        }
        guard seconds > 0 else { throw .malformedResponse("expires_in must be positive") }
        return seconds >= Double(limits.maxLifetimeSeconds) ? limits.maxLifetimeSeconds : Int(seconds)
    }

    private func clean(_ text: String, limit: Int) -> String {
        sanitize(text, removing: secrets, limit: limit)
    }

    /// RFC 9110 `tchar`.
    private func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}
