/// An access token held by the cache.
///
/// Times are seconds on the cache's injected clock. `id` is unique per cache and is what
/// `TokenCache.invalidate(_:ifTokenID:)` compares, so a burst of 401s for the same token causes
/// one refresh, not one per failure.
///
/// The value is a secret: `description`, `debugDescription` and the mirror all redact it. Use
/// ``authorizationHeaderValue`` (or ``value``) only where the token is meant to go.
public struct AccessToken: Sendable, Equatable {
    public let value: String
    /// The scheme to put in `Authorization` (e.g. `Bearer`).
    public let tokenType: String
    public let scope: String?
    public let issuedAt: Double
    public let expiresAt: Double
    public let id: UInt64
    /// True when this token was fetched because an upstream refused its predecessor: if it is
    /// refused too within `min_token_refresh_interval_seconds`, it is not refreshed again.
    public let replacesRefused: Bool
    /// Fetched here, or read from the shared token store.
    public let origin: TokenOrigin
    /// `"<type> <value>"`, the `Authorization` header value, made once per token rather than
    /// once per callout.
    public let authorizationHeaderValue: String

    public init(
        value: String,
        tokenType: String,
        scope: String?,
        issuedAt: Double,
        expiresAt: Double,
        id: UInt64,
        replacesRefused: Bool = false,
        origin: TokenOrigin = .identityProvider
    ) {
        self.replacesRefused = replacesRefused
        self.origin = origin
        self.value = value
        self.tokenType = tokenType
        self.scope = scope
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.id = id
        self.authorizationHeaderValue = Self.authorizationHeaderValue(tokenType: tokenType, value: value)
    }

    /// `"<type> <value>"`: how an `Authorization` value is made from a token.
    @inlinable
    public static func authorizationHeaderValue(tokenType: String, value: String) -> String {
        "\(tokenType) \(value)"
    }

    public var lifetime: Double { expiresAt - issuedAt }
}

extension AccessToken: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        "AccessToken(id: \(id), type: \(tokenType), expires in: \(formatSeconds(lifetime)) after issue, value: <redacted>)"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "id": id, "tokenType": tokenType, "scope": scope as Any, "issuedAt": issuedAt,
                "expiresAt": expiresAt, "value": "<redacted>",
            ],
            displayStyle: .struct
        )
    }
}

func formatSeconds(_ seconds: Double) -> String {
    if seconds.rounded() == seconds, abs(seconds) < 1e15 { return "\(Int(seconds))s" }
    return "\((seconds * 1000).rounded() / 1000)s"
}
