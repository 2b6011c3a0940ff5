/// Counters for metrics. All are totals since the cache was made, except `size`.
public struct TokenCacheStats: Sendable, Equatable {
    /// Requests served from the cache.
    public var hits = 0
    /// Requests that had to wait for a fetch (started or joined).
    public var misses = 0
    /// Misses that joined a fetch already in flight instead of starting one.
    public var singleFlightJoins = 0
    /// Background refreshes started while the current token was still served.
    public var refreshAheadRuns = 0
    /// Tokens or keys dropped by invalidation or removal.
    public var invalidations = 0
    /// Keys evicted to stay within `maxEntries`.
    public var evictions = 0
    /// Fetches that failed.
    public var fetchFailures = 0
    /// Requests refused at once while a key was backing off.
    public var failFasts = 0
    /// Keys currently held.
    public var size = 0
    /// Per external credential name.
    public var perCredential: [String: CredentialTokenStats] = [:]

    public init() {}

    subscript(credential name: String) -> CredentialTokenStats {
        get { perCredential[name] ?? CredentialTokenStats() }
        set { perCredential[name] = newValue }
    }
}

/// What one external credential's tokens look like: for the admin view and the metrics.
public struct CredentialTokenStats: Sendable, Equatable {
    /// The lifetime of the last token the identity provider issued, in seconds.
    public var issuedLifetimeSeconds: Double?
    /// Requests that waited for a fetch (started or joined) instead of being served a token.
    public var waits = 0
    /// Short-lifetime reports (at most one per external credential).
    public var shortLifetimes = 0

    public init() {}
}

/// What the admin view shows of one key: never the token value.
public struct TokenCacheEntrySnapshot: Sendable, Equatable {
    public enum Status: String, Sendable {
        case fresh
        case refreshingAhead = "refreshing_ahead"
        case fetching
        case backingOff = "backing_off"
        /// An upstream refused the token; the next request fetches a replacement.
        case refused
    }

    public var key: TokenCacheKey
    public var status: Status
    public var tokenPresent: Bool
    public var tokenID: UInt64?
    /// Seconds until the token expires (negative once expired).
    public var expiresInSeconds: Double?
    /// Seconds since the token was issued.
    public var ageSeconds: Double?
    /// Seconds left in the backoff window.
    public var retryAfterSeconds: Double?
    /// Requests waiting on the fetch in flight.
    public var waiters: Int
    /// Consecutive identity provider failures for this key.
    public var consecutiveFailures: Int
    /// Stable code of the last failure, when it has one.
    public var lastErrorCode: String?
    /// Where the held token came from.
    public var origin: TokenOrigin?

    init(key: TokenCacheKey, state: TokenCacheStateMachine.State, now: Double) {
        self.key = key
        var token: AccessToken?
        self.waiters = 0
        self.consecutiveFailures = 0
        switch state {
        case .fresh(let current):
            status = .fresh
            token = current
        case .refreshingAhead(let current, let fetch):
            status = .refreshingAhead
            token = current
            waiters = fetch.waiters.count
            consecutiveFailures = fetch.failuresBefore
        case .fetching(let fetch):
            status = .fetching
            waiters = fetch.waiters.count
            consecutiveFailures = fetch.failuresBefore
        case .refused:
            status = .refused
        case .backingOff(let backoff):
            status = .backingOff
            token = backoff.token
            retryAfterSeconds = max(0, backoff.until - now)
            consecutiveFailures = backoff.failures
            lastErrorCode = (backoff.lastError as? any TokenAcquisitionError)?.code
        }
        tokenPresent = token != nil
        tokenID = token?.id
        expiresInSeconds = token.map { $0.expiresAt - now }
        ageSeconds = token.map { now - $0.issuedAt }
        origin = token?.origin
    }
}
