/// A successful token endpoint answer (RFC 6749 §5.1), validated and normalised.
///
/// The access token is a secret: `description`, `debugDescription` and the mirror redact it.
public struct TokenResponse: Sendable, Equatable {
    public var accessToken: String
    /// The `Authorization` scheme: `Bearer` for any casing of `bearer`, other types as given.
    public var tokenType: String
    /// The granted scope, when the identity provider said.
    public var scope: String?
    /// Lifetime in seconds, positive and at most the client's configured maximum.
    public var expiresIn: Int
    /// Seconds the token had already lived when this answer was given: 0 from the identity
    /// provider; its age in the token store when another replica fetched it.
    public var issuedSecondsAgo: Double
    /// Where the token came from.
    public var origin: TokenOrigin

    public init(
        accessToken: String, tokenType: String = "Bearer", scope: String? = nil, expiresIn: Int,
        issuedSecondsAgo: Double = 0, origin: TokenOrigin = .identityProvider
    ) {
        self.accessToken = accessToken
        self.tokenType = tokenType
        self.scope = scope
        self.expiresIn = expiresIn
        self.issuedSecondsAgo = max(0, issuedSecondsAgo)
        self.origin = origin
    }
}

/// Where a cached token came from: this replica's own exchange, or the shared token store.
public enum TokenOrigin: String, Sendable, Equatable {
    case identityProvider = "identity_provider"
    case tokenStore = "token_store"
}

extension TokenResponse: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        "TokenResponse(type: \(tokenType), expires_in: \(expiresIn), scope: \(scope ?? "-"), access_token: <redacted>)"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "accessToken": "<redacted>", "tokenType": tokenType, "scope": scope as Any,
                "expiresIn": expiresIn,
            ],
            displayStyle: .struct
        )
    }
}
