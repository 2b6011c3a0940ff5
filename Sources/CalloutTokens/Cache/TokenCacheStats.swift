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

    public init() {}
}

/// What the admin view shows of one key: never the token value.
public struct TokenCacheEntrySnapshot: Sendable, Equatable {
    public enum Status: String, Sendable {
        case fresh
        case refreshingAhead = "refreshing_ahead"
        case fetching
        case backingOff = "backing_off"
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
    }
}
