/// The first short-lived token of an external credential: what the identity provider issues and
/// what the proxy does about it. Holds no token.
public struct ShortLifetimeNotice: Sendable, Equatable, CustomStringConvertible {
    public var externalCredential: String
    public var lifetimeSeconds: Double
    public var configuredSkewSeconds: Double
    /// The skew applied to these tokens.
    public var skewSeconds: Double
    /// Seconds after issue at which the next use refreshes the token in the background.
    public var refreshAfterSeconds: Double

    public var description: String {
        let usable = lifetimeSeconds - skewSeconds
        let effect =
            usable <= 0
            ? "tokens are unusable at once, so every callout waits for an identity provider call"
            : "each token is served for \(formatSeconds(usable)) (expiry skew reduced from \(formatSeconds(configuredSkewSeconds)) to \(formatSeconds(skewSeconds))) and refreshed in the background from \(formatSeconds(refreshAfterSeconds)) after issue; a callout waits for the identity provider only when its key was unused for longer than that"
        return
            "external_credential \(externalCredential): the identity provider issues tokens living \(formatSeconds(lifetimeSeconds)), less than \(formatSeconds(TokenCacheSettings.shortLifetimeFactor * configuredSkewSeconds)) (\(Int(TokenCacheSettings.shortLifetimeFactor)) x token_expiry_skew_seconds): \(effect)"
    }
}
