/// Limits and timings of the token cache. Every value has a default (listed on the property).
public struct TokenCacheSettings: Sendable, Equatable {
    /// Most keys held at once; the least recently used is evicted past it (default 10,000).
    /// Keys with a fetch in flight are not evicted.
    public var maxEntries: Int
    /// Share of a token's lifetime after which the next use starts one background refresh
    /// while the token is still served (default 0.8).
    public var refreshAheadRatio: Double
    /// A token is never served at or after `expiresAt - expirySkewSeconds` (default 10 s). For a
    /// token living less than ``shortLifetimeFactor`` times this, the skew is reduced to
    /// ``maxSkewShareOfLifetime`` of its lifetime, so every token stays usable for most of its life.
    public var expirySkewSeconds: Double
    /// A token fetched to replace one an upstream refused, less than this long ago, is not
    /// refreshed again when it is refused too: the refusal goes back to the caller (default 10 s;
    /// 0 turns the guard off).
    public var minRefreshIntervalSeconds: Double
    /// First backoff after an identity provider failure (default 0.5 s); doubles per failure.
    public var backoffBaseSeconds: Double
    /// Longest computed backoff (default 30 s).
    public var backoffMaxSeconds: Double
    /// Longest `Retry-After` from the identity provider that is honoured (default 300 s).
    public var maxRetryAfterSeconds: Double

    /// The largest share of a token's lifetime the expiry skew may take.
    public static let maxSkewShareOfLifetime = 0.25
    /// A lifetime shorter than this many times the configured skew is short: the skew is reduced
    /// and the first such token of an external credential is reported once.
    public static let shortLifetimeFactor = 4.0

    public init(
        maxEntries: Int = 10_000,
        refreshAheadRatio: Double = 0.8,
        expirySkewSeconds: Double = 10,
        minRefreshIntervalSeconds: Double = 10,
        backoffBaseSeconds: Double = 0.5,
        backoffMaxSeconds: Double = 30,
        maxRetryAfterSeconds: Double = 300
    ) {
        self.maxEntries = max(1, maxEntries)
        self.refreshAheadRatio = min(max(refreshAheadRatio, 0), 1)
        self.expirySkewSeconds = max(0, expirySkewSeconds)
        self.minRefreshIntervalSeconds = max(0, minRefreshIntervalSeconds)
        self.backoffBaseSeconds = max(0, backoffBaseSeconds)
        self.backoffMaxSeconds = max(self.backoffBaseSeconds, backoffMaxSeconds)
        self.maxRetryAfterSeconds = max(0, maxRetryAfterSeconds)
    }
}
