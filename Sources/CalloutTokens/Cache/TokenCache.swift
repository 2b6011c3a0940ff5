/// The concurrent token cache: single-flight fetches, refresh-ahead, compare-and-invalidate,
/// backoff after identity provider failures, and a bound on size. Decisions are made by
/// ``TokenCacheStateMachine`` under one short lock; fetches run in their own tasks.
///
/// A hit takes the lock once and allocates nothing. A miss parks the caller on a continuation
/// until the single fetch for its key ends. A cancelled caller gets `CancellationError` at once;
/// the fetch goes on for the others and its result is cached.
public final class TokenCache: Sendable {
    /// Gets a token from the identity provider. Its errors reach every waiter; an error
    /// conforming to ``TokenAcquisitionError`` with a `retryAfterSeconds` sets the backoff floor.
    public typealias Fetch = @Sendable () async throws -> TokenResponse

    private struct State {
        var machine: TokenCacheStateMachine
        var continuations: [TokenCacheStateMachine.WaiterID: CheckedContinuation<AccessToken, any Error>] = [:]
        var nextWaiterID: TokenCacheStateMachine.WaiterID = 1
        /// How to fetch each key of a `prefetch = true` credential, for refreshes without traffic.
        var prefetchers: [TokenCacheKey: Fetch] = [:]
        var prefetchRunning = false
    }

    /// How often keys registered for prefetch are checked (0.25 s): well under the refresh-ahead
    /// window of the shortest lifetimes the cache serves without waits (1 s tokens: 0.15 s).
    public static let prefetchCheckInterval: Duration = .milliseconds(250)

    private let state: LockedState<State>
    private let clock: @Sendable () -> Double
    private let random: @Sendable () -> Double
    private let notices: @Sendable (ShortLifetimeNotice) -> Void

    /// - Parameters:
    ///   - clock: seconds on a monotonic clock; the default counts from the cache's creation.
    ///   - random: jitter source in 0...1 for backoff.
    ///   - notices: told once per external credential whose identity provider issues short-lived
    ///     tokens (a log warning and a metric).
    public init(
        settings: TokenCacheSettings = TokenCacheSettings(),
        clock: (@Sendable () -> Double)? = nil,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0...1) },
        notices: @escaping @Sendable (ShortLifetimeNotice) -> Void = { _ in }
    ) {
        self.notices = notices
        self.state = LockedState(State(machine: TokenCacheStateMachine(settings: settings)))
        if let clock {
            self.clock = clock
        } else {
            let start = ContinuousClock.now
            self.clock = { (ContinuousClock.now - start) / .seconds(1) }
        }
        self.random = random
    }

    public var settings: TokenCacheSettings { state.withLock { $0.machine.settings } }

    /// The cached token for `key` without suspending, or `nil` when the caller must wait for a
    /// fetch (``token(for:fetch:)``). Starts a refresh-ahead in the background when one is due,
    /// and throws while the key is backing off after a failure.
    public func cachedToken(for key: TokenCacheKey, fetch: @escaping Fetch) throws -> AccessToken? {
        try cachedToken(for: key, makeFetch: { fetch })
    }

    /// ``cachedToken(for:fetch:)`` with the fetch made only when a refresh-ahead needs it: a hit
    /// allocates no closure.
    public func cachedToken(for key: TokenCacheKey, makeFetch: () -> Fetch) throws -> AccessToken? {
        let now = clock()
        switch state.withLock({ $0.machine.request(key, now: now, waiter: nil) }) {
        case .returnToken(let token, let refresh):
            if let refresh { startFetch(refresh, key: key, fetch: makeFetch()) }
            return token
        case .failFast(let error):
            throw error
        case .wait, .needsWaiter:
            return nil
        }
    }

    /// The token for `key`, from the cache or from one shared call to `fetch`.
    public func token(for key: TokenCacheKey, fetch: @escaping Fetch) async throws -> AccessToken {
        let now = clock()
        let fast = state.withLock { $0.machine.request(key, now: now, waiter: nil) }
        switch fast {
        case .returnToken(let token, let refresh):
            if let refresh { startFetch(refresh, key: key, fetch: fetch) }
            return token
        case .failFast(let error):
            throw error
        case .wait, .needsWaiter:
            break
        }
        try Task.checkCancellation()

        let waiter = state.withLock { state in
            defer { state.nextWaiterID += 1 }
            return state.nextWaiterID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation {
                (continuation: CheckedContinuation<AccessToken, any Error>) in
                let now = clock()
                // Cancellation is checked under the lock: a cancellation handler that ran
                // before the waiter was registered found nothing to cancel.
                let (result, fetchToStart): (Result<AccessToken, any Error>?, TokenCacheStateMachine.FetchID?) =
                    state.withLock { state in
                        if Task.isCancelled { return (.failure(CancellationError()), nil) }
                        switch state.machine.request(key, now: now, waiter: waiter) {
                        case .returnToken(let token, let refresh):
                            return (.success(token), refresh)
                        case .failFast(let error):
                            return (.failure(error), nil)
                        case .wait(let startFetch):
                            state.continuations[waiter] = continuation
                            return (nil, startFetch)
                        case .needsWaiter:
                            preconditionFailure("request with a waiter id asked for one")
                        }
                    }
                if let fetchToStart { startFetch(fetchToStart, key: key, fetch: fetch) }
                if let result { continuation.resume(with: result) }
            }
        } onCancel: {
            let continuation = state.withLock { state in
                state.machine.cancelWaiter(waiter, key: key)
                    ? state.continuations.removeValue(forKey: waiter) : nil
            }
            continuation?.resume(throwing: CancellationError())
        }
    }

    /// Drops the token for `key` if it is still the one with `tokenID` (the token an upstream
    /// just refused). Returns whether it was dropped.
    @discardableResult
    public func invalidate(_ key: TokenCacheKey, ifTokenID tokenID: UInt64) -> Bool {
        state.withLock { $0.machine.invalidate(key, ifTokenID: tokenID) }
    }

    /// Drops the token and any backoff for `key`; a fetch in flight still completes.
    @discardableResult
    public func invalidate(_ key: TokenCacheKey) -> Bool {
        state.withLock { $0.machine.invalidate(key) }
    }

    /// Removes every key matching `predicate`. Returns how many were removed.
    @discardableResult
    public func invalidateAll(where predicate: (TokenCacheKey) -> Bool) -> Int {
        state.withLock { $0.machine.removeAll(where: predicate) }
    }

    /// Removes every key of an external credential (and of one principal, when given), e.g.
    /// after a configuration reload changed it.
    @discardableResult
    public func removeAll(externalCredential: String, principal: String? = nil) -> Int {
        invalidateAll { key in
            key.externalCredential == externalCredential
                && (principal == nil || key.principal == principal)
        }
    }

    /// Drops the current token for `key` and returns a new one (joining a fetch already in
    /// flight, which started after the dropped token was issued).
    public func forceRefresh(_ key: TokenCacheKey, fetch: @escaping Fetch) async throws -> AccessToken {
        state.withLock { _ = $0.machine.invalidate(key) }
        return try await token(for: key, fetch: fetch)
    }

    /// Per-key view for the admin endpoint, most recently used first. Never holds token values.
    public func snapshot() -> [TokenCacheEntrySnapshot] {
        let now = clock()
        return state.withLock { $0.machine.snapshot(now: now) }
    }

    public var stats: TokenCacheStats { state.withLock { $0.machine.stats } }

    /// Refreshes `key`'s token before it becomes unusable even without traffic, while the key is
    /// used within its token's lifetime. Registering again is cheap; the first registration starts
    /// a periodic check (every ``prefetchCheckInterval``) that ends with the cache.
    public func registerPrefetch(_ key: TokenCacheKey, fetch: @escaping Fetch) {
        let startLoop = state.withLock { state -> Bool in
            if state.prefetchers[key] == nil { state.prefetchers[key] = fetch }
            defer { state.prefetchRunning = true }
            return !state.prefetchRunning
        }
        guard startLoop else { return }
        Task { [weak self] in
            while true {
                try? await Task.sleep(for: Self.prefetchCheckInterval)
                guard let cache = self else { return }
                cache.prefetchDue()
            }
        }
    }

    /// One prefetch pass: starts the due refreshes of registered keys and forgets keys the cache
    /// no longer holds. Returns how many refreshes started.
    @discardableResult
    public func prefetchDue() -> Int {
        let now = clock()
        let due = state.withLock { state -> [(TokenCacheKey, TokenCacheStateMachine.FetchID, Fetch)] in
            let prefetchers = state.prefetchers.filter { state.machine.contains($0.key) }
            state.prefetchers = prefetchers
            return state.machine.prefetch(now: now, where: { prefetchers[$0] != nil }).compactMap { started in
                prefetchers[started.key].map { (started.key, started.fetch, $0) }
            }
        }
        for (key, fetchID, fetch) in due { startFetch(fetchID, key: key, fetch: fetch) }
        return due.count
    }

    /// Seconds during which a refusal of `token` goes back to the caller without a refresh (the
    /// refresh storm guard), or `nil` when a refusal may refresh it.
    public func refreshGuardRemaining(_ token: AccessToken) -> Double? {
        // Most tokens replace none refused: no lock, no clock read on a cache hit.
        guard token.replacesRefused else { return nil }
        let now = clock()
        return state.withLock { $0.machine.refreshGuardRemaining(token, now: now) }
    }

    private func startFetch(
        _ fetchID: TokenCacheStateMachine.FetchID, key: TokenCacheKey, fetch: @escaping Fetch
    ) {
        Task {
            let outcome: Result<TokenResponse, any Error>
            do {
                outcome = .success(try await fetch())
            } catch {
                outcome = .failure(error)
            }
            self.finish(fetchID, key: key, outcome: outcome)
        }
    }

    private func finish(
        _ fetchID: TokenCacheStateMachine.FetchID,
        key: TokenCacheKey,
        outcome: Result<TokenResponse, any Error>
    ) {
        let now = clock()
        switch outcome {
        case .success(let response):
            let (token, waiting, notice) = state.withLock { state in
                let (token, completion) = state.machine.fetchSucceeded(
                    key, fetch: fetchID, response: response, now: now)
                return (
                    token, completion.waiters.compactMap { state.continuations.removeValue(forKey: $0) },
                    completion.shortLifetime
                )
            }
            for continuation in waiting { continuation.resume(returning: token) }
            if let notice { notices(notice) }
        case .failure(let error):
            let jitter = random()
            let retryAfter = (error as? any TokenAcquisitionError)?.retryAfterSeconds
            let waiting = state.withLock { state in
                let completion = state.machine.fetchFailed(
                    key, fetch: fetchID, error: error, retryAfter: retryAfter, jitter: jitter, now: now)
                return completion.waiters.compactMap { state.continuations.removeValue(forKey: $0) }
            }
            for continuation in waiting { continuation.resume(throwing: error) }
        }
    }
}
