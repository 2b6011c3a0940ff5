/// The token cache's decisions, without I/O: no clock reads (every call takes `now`, seconds on
/// the cache's clock), no randomness (failures take a `jitter` in 0...1), no tasks. Calls return
/// actions that `TokenCache` carries out: start a fetch, resume waiters, fail fast.
///
/// Per key the state is one of: absent, `fetching` (no usable token; waiters queued on one
/// fetch), `fresh(token)`, `refreshingAhead(token)` (served while one background fetch runs),
/// `backingOff` (the identity provider failed; fail fast until a deadline, still serving a
/// token that remains usable), `refused` (an upstream refused the token; the next request fetches
/// a replacement, which the refresh storm guard then protects).
///
/// Lifetimes: a token is usable until `expiresAt - skew`, where the skew is the configured one,
/// reduced to a quarter of the lifetime for short-lived tokens; refresh-ahead is due once
/// `refreshAheadRatio` of that usable life has passed, so a token in use is replaced before it
/// becomes unusable whatever its lifetime.
public struct TokenCacheStateMachine: Sendable {
    public typealias WaiterID = UInt64
    public typealias FetchID = UInt64

    struct Fetch: Sendable {
        var id: FetchID
        var startedAt: Double
        var waiters: [WaiterID]
        /// Consecutive failures before this fetch.
        var failuresBefore: Int
        /// Started because an upstream refused the key's previous token.
        var afterRefusal = false
    }

    struct Backoff: Sendable {
        var until: Double
        var lastError: any Error
        var failures: Int
        /// A token still usable when the failure happened; served while it stays usable.
        var token: AccessToken?
    }

    enum State: Sendable {
        case fetching(Fetch)
        case fresh(AccessToken)
        case refreshingAhead(AccessToken, Fetch)
        case backingOff(Backoff)
        case refused

        var fetch: Fetch? {
            switch self {
            case .fetching(let fetch), .refreshingAhead(_, let fetch): fetch
            case .fresh, .backingOff, .refused: nil
            }
        }
    }

    public enum RequestAction: Sendable {
        /// Serve this token. If `backgroundRefresh` is set, start that fetch without waiting.
        case returnToken(AccessToken, backgroundRefresh: FetchID?)
        /// Park the waiter; if `startFetch` is set, this request must start that fetch.
        case wait(startFetch: FetchID?)
        /// Fail at once: the key is backing off.
        case failFast(TokenCacheError)
        /// Only for a request without a waiter id: ask again with one.
        case needsWaiter
    }

    /// Whom to resume with a fetch's result.
    public struct Completion: Sendable {
        public var waiters: [WaiterID]
        /// False when the key was removed while the fetch ran: its waiters get the result but it
        /// is not cached.
        public var cached: Bool
        /// Set for the first short-lived token of an external credential: report it once.
        public var shortLifetime: ShortLifetimeNotice? = nil
    }

    public let settings: TokenCacheSettings
    private var entries = TokenCacheLRU<State>()
    /// Fetches whose key was removed (by `removeAll(where:)`) while they ran.
    private var orphans: [FetchID: Fetch] = [:]
    private var nextFetchID: FetchID = 1
    private var nextTokenID: UInt64 = 1
    private var counters = TokenCacheStats()
    /// External credentials whose short token lifetime has been reported.
    private var shortLifetimeReported: Set<String> = []

    public init(settings: TokenCacheSettings = TokenCacheSettings()) {
        self.settings = settings
    }

    public var count: Int { entries.count }

    // MARK: Requests

    /// A request for `key`. With `waiter == nil` only hits are served (the lock-light path); a
    /// request that would wait returns `.needsWaiter` and changes nothing.
    public mutating func request(_ key: TokenCacheKey, now: Double, waiter: WaiterID?)
        -> RequestAction
    {
        let action = decide(key, now: now, waiter: waiter)
        if case .wait = action { counters[credential: key.externalCredential].waits += 1 }
        return action
    }

    private mutating func decide(_ key: TokenCacheKey, now: Double, waiter: WaiterID?) -> RequestAction {
        guard let slot = entries.slot(for: key) else {
            guard let waiter else { return .needsWaiter }
            counters.misses += 1
            let fetch = makeFetch(now: now, waiters: [waiter], failuresBefore: 0)
            evictIfFull()
            _ = entries.insert(key, .fetching(fetch), now: now)
            return .wait(startFetch: fetch.id)
        }
        entries.touch(slot, now: now)
        switch entries[slot] {
        case .fresh(let token):
            if isUsable(token, now: now) {
                counters.hits += 1
                guard isDueForRefresh(token, now: now) else {
                    return .returnToken(token, backgroundRefresh: nil)
                }
                counters.refreshAheadRuns += 1
                let fetch = makeFetch(now: now, waiters: [], failuresBefore: 0)
                entries[slot] = .refreshingAhead(token, fetch)
                return .returnToken(token, backgroundRefresh: fetch.id)
            }
            guard let waiter else { return .needsWaiter }
            counters.misses += 1
            let fetch = makeFetch(now: now, waiters: [waiter], failuresBefore: 0)
            entries[slot] = .fetching(fetch)
            return .wait(startFetch: fetch.id)

        case .refreshingAhead(let token, _) where isUsable(token, now: now):
            counters.hits += 1
            return .returnToken(token, backgroundRefresh: nil)

        case .refreshingAhead, .fetching:
            guard let waiter else { return .needsWaiter }
            counters.misses += 1
            counters.singleFlightJoins += 1
            guard case .some(var fetch) = entries.take(slot).fetch else { preconditionFailure() }
            fetch.waiters.append(waiter)
            entries[slot] = .fetching(fetch)
            return .wait(startFetch: nil)

        case .refused:
            guard let waiter else { return .needsWaiter }
            counters.misses += 1
            var fetch = makeFetch(now: now, waiters: [waiter], failuresBefore: 0)
            fetch.afterRefusal = true
            entries[slot] = .fetching(fetch)
            return .wait(startFetch: fetch.id)

        case .backingOff(var backoff):
            if let token = backoff.token, isUsable(token, now: now) {
                counters.hits += 1
                guard now >= backoff.until, isDueForRefresh(token, now: now) else {
                    return .returnToken(token, backgroundRefresh: nil)
                }
                counters.refreshAheadRuns += 1
                let fetch = makeFetch(now: now, waiters: [], failuresBefore: backoff.failures)
                entries[slot] = .refreshingAhead(token, fetch)
                return .returnToken(token, backgroundRefresh: fetch.id)
            }
            if now < backoff.until {
                counters.failFasts += 1
                if backoff.token != nil {
                    backoff.token = nil
                    entries[slot] = .backingOff(backoff)
                }
                return .failFast(
                    .backingOff(retryAfterSeconds: backoff.until - now, lastError: backoff.lastError))
            }
            guard let waiter else { return .needsWaiter }
            counters.misses += 1
            let fetch = makeFetch(now: now, waiters: [waiter], failuresBefore: backoff.failures)
            entries[slot] = .fetching(fetch)
            return .wait(startFetch: fetch.id)
        }
    }

    /// Removes a cancelled waiter. Returns false if it was not waiting (already resumed).
    public mutating func cancelWaiter(_ waiter: WaiterID, key: TokenCacheKey) -> Bool {
        if let slot = entries.slot(for: key) {
            var state = entries.take(slot)
            defer { entries[slot] = state }
            switch state {
            case .fetching(var fetch):
                if let position = fetch.waiters.firstIndex(of: waiter) {
                    fetch.waiters.remove(at: position)
                    state = .fetching(fetch)
                    return true
                }
            case .refreshingAhead(let token, var fetch):
                if let position = fetch.waiters.firstIndex(of: waiter) {
                    fetch.waiters.remove(at: position)
                    state = .refreshingAhead(token, fetch)
                    return true
                }
            case .fresh, .backingOff, .refused:
                break
            }
        }
        for (id, var fetch) in orphans {
            if let position = fetch.waiters.firstIndex(of: waiter) {
                fetch.waiters.remove(at: position)
                orphans[id] = fetch
                return true
            }
        }
        return false
    }

    // MARK: Prefetch

    /// Starts a background refresh for every key passing `eligible` whose token is due for
    /// refresh-ahead, still usable, and was used within its lifetime (a key nobody uses stops
    /// being prefetched after one lifetime). O(n): run periodically, not per request.
    public mutating func prefetch(now: Double, where eligible: (TokenCacheKey) -> Bool) -> [(
        key: TokenCacheKey, fetch: FetchID
    )] {
        var started: [(key: TokenCacheKey, fetch: FetchID)] = []
        for slot in entries.slotsInOrder {
            guard case .fresh(let token) = entries[slot], isUsable(token, now: now), isDueForRefresh(token, now: now),
                now - entries.usedAt(slot) < token.lifetime, eligible(entries.key(at: slot))
            else { continue }
            counters.refreshAheadRuns += 1
            let fetch = makeFetch(now: now, waiters: [], failuresBefore: 0)
            entries[slot] = .refreshingAhead(token, fetch)
            started.append((entries.key(at: slot), fetch.id))
        }
        return started
    }

    /// Whether `key` is held (with a token, a fetch or a backoff).
    public func contains(_ key: TokenCacheKey) -> Bool { entries.slot(for: key) != nil }

    // MARK: Fetch results

    /// A fetch returned a token. The token is issued at the fetch's start (the conservative
    /// reading of `expires_in`) and cached unless the key was removed meanwhile.
    public mutating func fetchSucceeded(
        _ key: TokenCacheKey,
        fetch fetchID: FetchID,
        response: TokenResponse,
        now: Double
    ) -> (token: AccessToken, completion: Completion) {
        let (fetch, slot) = claimFetch(fetchID, key: key)
        // A token from the shared store was issued before this fetch started, by its age there.
        let issuedAt = (fetch?.startedAt ?? now) - response.issuedSecondsAgo
        let token = AccessToken(
            value: response.accessToken,
            tokenType: response.tokenType,
            scope: response.scope,
            issuedAt: issuedAt,
            expiresAt: issuedAt + Double(response.expiresIn),
            id: nextTokenID,
            replacesRefused: fetch?.afterRefusal ?? false,
            origin: response.origin
        )
        nextTokenID += 1
        if let slot { entries[slot] = .fresh(token) }
        var completion = Completion(waiters: fetch?.waiters ?? [], cached: slot != nil)
        let credential = key.externalCredential
        let lifetime = Double(response.expiresIn)
        counters[credential: credential].issuedLifetimeSeconds = lifetime
        if isShortLived(token), shortLifetimeReported.insert(credential).inserted {
            counters[credential: credential].shortLifetimes += 1
            completion.shortLifetime = ShortLifetimeNotice(
                externalCredential: credential, lifetimeSeconds: lifetime,
                configuredSkewSeconds: settings.expirySkewSeconds, skewSeconds: expirySkew(for: token),
                refreshAfterSeconds: refreshAfter(token))
        }
        return (token, completion)
    }

    /// A fetch failed. Its waiters get `error`; the key backs off exponentially (with jitter, at
    /// least `retryAfter` when the identity provider gave one) and fails fast meanwhile.
    public mutating func fetchFailed(
        _ key: TokenCacheKey,
        fetch fetchID: FetchID,
        error: any Error,
        retryAfter: Double?,
        jitter: Double,
        now: Double
    ) -> Completion {
        counters.fetchFailures += 1
        let (fetch, slot) = claimFetch(fetchID, key: key)
        guard let fetch else { return Completion(waiters: [], cached: false) }
        guard let slot else { return Completion(waiters: fetch.waiters, cached: false) }
        var token: AccessToken?
        if case .refreshingAhead(let current, _) = entries[slot] { token = current }
        let failures = fetch.failuresBefore + 1
        let delay = Self.backoffDelay(
            failures: failures, jitter: jitter, retryAfter: retryAfter, settings: settings)
        entries[slot] = .backingOff(
            Backoff(until: now + delay, lastError: error, failures: failures, token: token))
        return Completion(waiters: fetch.waiters, cached: true)
    }

    /// Seconds to back off after `failures` consecutive failures: `base * 2^(failures-1)`, capped
    /// at the maximum, scaled by `0.5 + 0.5 * jitter` ("equal jitter"); then at least
    /// `retryAfter` (itself capped at `maxRetryAfterSeconds`).
    public static func backoffDelay(
        failures: Int,
        jitter: Double,
        retryAfter: Double?,
        settings: TokenCacheSettings
    ) -> Double {
        let exponent = Double(min(max(failures, 1) - 1, 62))
        let ceiling = min(settings.backoffMaxSeconds, settings.backoffBaseSeconds * pow2(exponent))
        let jitter = min(max(jitter, 0), 1)
        var delay = ceiling * (0.5 + 0.5 * jitter)
        if let retryAfter, retryAfter > 0 {
            delay = max(delay, min(retryAfter, settings.maxRetryAfterSeconds))
        }
        return delay
    }

    // MARK: Invalidation

    /// Drops the cached token only if it is the one with `tokenID` (an upstream refused it): the
    /// first of a burst of 401s for one token invalidates it, the rest find a newer token (or a
    /// fetch) and do nothing. The replacement is marked ``AccessToken/replacesRefused``.
    /// Returns whether a token was dropped.
    public mutating func invalidate(_ key: TokenCacheKey, ifTokenID tokenID: UInt64) -> Bool {
        dropToken(key, refused: true) { $0.id == tokenID }
    }

    /// Drops the cached token for `key` whatever it is, and any backoff. A fetch in flight keeps
    /// running and its result is cached. Returns whether anything was dropped.
    public mutating func invalidate(_ key: TokenCacheKey) -> Bool {
        guard let slot = entries.slot(for: key) else { return false }
        if case .backingOff = entries[slot] {
            entries.remove(slot)
            counters.invalidations += 1
            return true
        }
        return dropToken(key, refused: false) { _ in true }
    }

    /// Removes every key matching `predicate`, tokens and backoffs alike. Fetches in flight for
    /// those keys still answer their waiters but their results are not cached. O(n): an admin
    /// and reload operation. Returns the number of keys removed.
    public mutating func removeAll(where predicate: (TokenCacheKey) -> Bool) -> Int {
        var removed = 0
        for slot in entries.slotsInOrder where predicate(entries.key(at: slot)) {
            if let fetch = entries[slot].fetch { orphans[fetch.id] = fetch }
            entries.remove(slot)
            removed += 1
        }
        counters.invalidations += removed
        return removed
    }

    // MARK: Views

    public func snapshot(now: Double) -> [TokenCacheEntrySnapshot] {
        entries.slotsInOrder.map { slot in
            TokenCacheEntrySnapshot(key: entries.key(at: slot), state: entries[slot], now: now)
        }
    }

    /// The counters, with `size` filled in.
    public var stats: TokenCacheStats {
        var stats = counters
        stats.size = entries.count
        return stats
    }

    // MARK: Helpers

    /// The skew for `token`: the configured one, at most a quarter of the token's lifetime.
    public func expirySkew(for token: AccessToken) -> Double {
        min(settings.expirySkewSeconds, max(0, token.lifetime) * TokenCacheSettings.maxSkewShareOfLifetime)
    }

    /// A token is usable strictly before `expiresAt - expirySkew(for:)`.
    public func isUsable(_ token: AccessToken, now: Double) -> Bool {
        now < token.expiresAt - expirySkew(for: token)
    }

    /// Seconds after issue at which refresh-ahead is due: `refreshAheadRatio` of the usable life.
    public func refreshAfter(_ token: AccessToken) -> Double {
        Self.refreshAfter(lifetime: token.lifetime, settings: settings)
    }

    /// ``refreshAfter(_:)`` for a token of `lifetime` seconds: the shared store stops handing a
    /// token out at the same point, so a replica's refresh-ahead never reads back the token it is
    /// replacing.
    public static func refreshAfter(lifetime: Double, settings: TokenCacheSettings) -> Double {
        let skew = min(settings.expirySkewSeconds, max(0, lifetime) * TokenCacheSettings.maxSkewShareOfLifetime)
        return settings.refreshAheadRatio * max(0, lifetime - skew)
    }

    /// True once `refreshAheadRatio` of the token's usable life (`lifetime - skew`) has passed.
    public func isDueForRefresh(_ token: AccessToken, now: Double) -> Bool {
        now >= token.issuedAt + refreshAfter(token)
    }

    /// True for a token living less than ``TokenCacheSettings/shortLifetimeFactor`` times the
    /// configured skew: its skew was reduced.
    public func isShortLived(_ token: AccessToken) -> Bool {
        token.lifetime < TokenCacheSettings.shortLifetimeFactor * settings.expirySkewSeconds
    }

    /// The refresh storm guard: seconds during which a refusal of `token` is handed to the caller
    /// without another fetch, or `nil` when a refusal may refresh it. Only a token that replaced
    /// a refused one is guarded, for `minRefreshIntervalSeconds` after its fetch started.
    public func refreshGuardRemaining(_ token: AccessToken, now: Double) -> Double? {
        guard token.replacesRefused else { return nil }
        let remaining = token.issuedAt + settings.minRefreshIntervalSeconds - now
        return remaining > 0 ? remaining : nil
    }

    private mutating func makeFetch(now: Double, waiters: [WaiterID], failuresBefore: Int) -> Fetch {
        defer { nextFetchID += 1 }
        return Fetch(id: nextFetchID, startedAt: now, waiters: waiters, failuresBefore: failuresBefore)
    }

    /// Finds the fetch `fetchID` on the key (returning its slot) or among the orphans.
    private mutating func claimFetch(_ fetchID: FetchID, key: TokenCacheKey) -> (Fetch?, Int?) {
        if let slot = entries.slot(for: key), let fetch = entries[slot].fetch, fetch.id == fetchID {
            return (fetch, slot)
        }
        return (orphans.removeValue(forKey: fetchID), nil)
    }

    private mutating func dropToken(
        _ key: TokenCacheKey, refused: Bool, if matches: (AccessToken) -> Bool
    ) -> Bool {
        guard let slot = entries.slot(for: key) else { return false }
        switch entries[slot] {
        case .fresh(let token) where matches(token):
            if refused { entries[slot] = .refused } else { entries.remove(slot) }
        case .refreshingAhead(let token, var fetch) where matches(token):
            fetch.afterRefusal = fetch.afterRefusal || refused
            entries[slot] = .fetching(fetch)
        case .backingOff(var backoff):
            guard let token = backoff.token, matches(token) else { return false }
            backoff.token = nil
            entries[slot] = .backingOff(backoff)
        case .fresh, .refreshingAhead, .fetching, .refused:
            return false
        }
        counters.invalidations += 1
        return true
    }

    private mutating func evictIfFull() {
        while entries.count >= settings.maxEntries {
            guard let victim = entries.leastRecentlyUsed(where: { $0.fetch == nil }) else { return }
            entries.remove(victim)
            counters.evictions += 1
        }
    }
}

private func pow2(_ exponent: Double) -> Double {
    var result = 1.0
    var remaining = Int(exponent)
    while remaining > 0 {
        result *= 2
        remaining -= 1
    }
    return result
}
