import Foundation
import NIOConcurrencyHelpers

/// One token exchange per lifetime across every replica: wraps a replica's own fetch with the
/// shared store. A replica that misses locally reads the store; a fresh sealed row is served. On a
/// store miss one replica takes a short lease and fetches; the others poll for the row it writes
/// (at most `leaseSeconds`, then they fetch themselves). An upstream's refusal drops the refused
/// token fleet-wide, compare-and-invalidate. The store never makes a callout fail that would
/// succeed without it: any store failure or slowness (past `timeout`) falls back to the local
/// fetch and puts the store aside for `retrySeconds`.
public final class SharedTokens: Sendable {
    public struct Settings: Sendable {
        /// Longest time one store operation may take.
        public var timeout: Duration
        public var leaseSeconds: Int
        public var retrySeconds: Int
        /// The cache's settings: a stored token is handed out until the cache would refresh it.
        public var cache: TokenCacheSettings
        /// First and longest pause between reads while another replica holds the lease.
        public var pollInterval: (first: Duration, longest: Duration)

        public init(
            timeout: Duration = .milliseconds(500), leaseSeconds: Int = 15, retrySeconds: Int = 5,
            cache: TokenCacheSettings = TokenCacheSettings(),
            pollInterval: (first: Duration, longest: Duration) = (.milliseconds(20), .milliseconds(200))
        ) {
            self.timeout = timeout
            self.leaseSeconds = leaseSeconds
            self.retrySeconds = retrySeconds
            self.cache = cache
            self.pollInterval = pollInterval
        }
    }

    /// What happened, for logs, metrics and readiness. Never carries a token.
    public enum Event: Sendable, Equatable {
        /// A fresh token was read from the store.
        case hit
        /// The store had no fresh token; this replica fetched one and stored it.
        case miss
        /// Another replica held the lease; this one waited for its row (once per fetch).
        case leaseWait
        /// The lease holder wrote nothing in time; this replica fetched on its own.
        case leaseWaitTimedOut
        /// A row could not be served (altered, or sealed with a key this replica lacks).
        case rejectedRow(TokenStoreOpenError)
        /// A store operation failed or timed out (`operation`: read, claim, publish, ...).
        case error(operation: String, reason: String)
        /// The store became unavailable: callouts fetch locally until it is back.
        case unavailable(reason: String)
        /// The store is back after `afterSeconds`.
        case available(afterSeconds: Double)
        /// An upstream's refusal dropped the stored token.
        case invalidated
    }

    public let store: any SharedTokenStore
    public let keys: TokenStoreKeys
    public let settings: Settings
    /// Names this replica's leases.
    public let holder: String
    private let events: @Sendable (Event) -> Void
    private let describeError: @Sendable (any Error) -> String
    private let clock: @Sendable () -> Double
    private let state: NIOLockedValueBox<State>

    private struct State {
        var health: TokenStoreHealth
        /// Digests of tokens an upstream refused here, and when to forget them (monotonic seconds).
        var refused: [[UInt8]: Double] = [:]
    }

    /// How many refused digests are remembered at most, and for how long.
    static let refusedLimit = 1024
    static let refusedMemorySeconds = 300.0

    public init(
        store: any SharedTokenStore, keys: TokenStoreKeys, settings: Settings = Settings(),
        holder: String = SharedTokens.makeHolderName(), events: @escaping @Sendable (Event) -> Void = { _ in },
        describeError: @escaping @Sendable (any Error) -> String = SharedTokens.describe,
        clock: (@Sendable () -> Double)? = nil
    ) {
        self.describeError = describeError
        self.store = store
        self.keys = keys
        self.settings = settings
        self.holder = holder
        self.events = events
        if let clock {
            self.clock = clock
        } else {
            let start = ContinuousClock.now
            self.clock = { (ContinuousClock.now - start) / .seconds(1) }
        }
        self.state = NIOLockedValueBox(State(health: TokenStoreHealth(retrySeconds: Double(settings.retrySeconds))))
    }

    /// A lease holder's name: host, process and a random part.
    public static func makeHolderName() -> String {
        let host = ProcessInfo.processInfo.hostName.prefix(64)
        return "\(host)/\(ProcessInfo.processInfo.processIdentifier)/\(UInt32.random(in: 0...UInt32.max))"
    }

    /// The store's state now, for `/readyz` and the credentials view.
    public var health: TokenStoreHealth { state.withLockedValue { $0.health } }

    /// The token for `key`: from the store when it holds a fresh one, else from `local` (once for
    /// the fleet, when the store works), stored for the others.
    public func fetch(
        _ key: TokenCacheKey, local: @escaping @Sendable () async throws -> TokenResponse
    ) async throws -> TokenResponse {
        guard shouldUseStore() else { return try await local() }
        let keyDigest = key.storeDigest
        let giveUpAt = clock() + Double(settings.leaseSeconds) + settings.timeout / .seconds(1)
        var pause = settings.pollInterval.first
        var waited = false
        var unclaimed = 0
        while true {
            var stale = refusedDigests()
            let row: StoredTokenRow?
            do {
                row = try await withStoreTimeout("read") { try await self.store.read(keyDigest) }
            } catch {
                return try await local()
            }
            if let row, let sealed = row.sealed {
                switch open(sealed, row: row, keyDigest: keyDigest) {
                case .success(let token):
                    let refused = Set(stale)
                    switch StoredTokenDecision.decide(
                        token, digest: row.tokenDigest, now: row.now,
                        cache: settings.cache, refused: refused)
                    {
                    case .serve:
                        events(.hit)
                        return token.response(at: row.now)
                    case .stale, .refused: break
                    }
                case .failure(let problem):
                    events(.rejectedRow(problem))
                    stale.append(row.tokenDigest)
                }
            }
            if row?.leaseHeld != true {
                let claimedAt: Double?
                let stale = stale
                do {
                    claimedAt = try await withStoreTimeout("claim") {
                        try await self.store.claim(
                            keyDigest, holder: self.holder, leaseSeconds: self.settings.leaseSeconds, stale: stale)
                    }
                } catch {
                    return try await local()
                }
                if let claimedAt { return try await fetchAndPublish(keyDigest, issuedAt: claimedAt, local: local) }
                // Not taken though no lease was seen: a lease or a fresh row arrived in between (read
                // again at once), or the store keeps holding a row this replica does not serve
                // (fetch here rather than wait for a lease that will not come).
                unclaimed += 1
                if unclaimed >= 2 { return try await local() }
                continue
            }
            if clock() >= giveUpAt {
                events(.leaseWaitTimedOut)
                return try await local()
            }
            if !waited {
                waited = true
                events(.leaseWait)
            }
            try await Task.sleep(for: pause)
            pause = min(pause * 2, settings.pollInterval.longest)
        }
    }

    /// After an upstream refused `accessToken`: it is never served from the store to this replica
    /// again, and the store drops it if it still holds it (so a burst of refusals across replicas
    /// refreshes once).
    public func invalidate(_ key: TokenCacheKey, accessToken: String) async {
        let digest = StoredToken.digest(of: accessToken)
        let now = clock()
        state.withLockedValue { state in
            state.refused = state.refused.filter { $0.value > now }
            if state.refused.count >= Self.refusedLimit, let oldest = state.refused.min(by: { $0.value < $1.value }) {
                state.refused.removeValue(forKey: oldest.key)
            }
            state.refused[digest] = now + Self.refusedMemorySeconds
        }
        guard shouldUseStore() else { return }
        let keyDigest = key.storeDigest
        if (try? await withStoreTimeout(
            "invalidate", { try await self.store.invalidate(keyDigest, tokenDigest: digest) }))
            == true
        {
            events(.invalidated)
        }
    }

    /// Removes expired rows (run now and then by each replica). Failures are reported like any other.
    @discardableResult
    public func removeExpired() async -> Int {
        guard shouldUseStore() else { return 0 }
        return (try? await withStoreTimeout("remove_expired") { try await self.store.removeExpired() }) ?? 0
    }

    private func fetchAndPublish(
        _ keyDigest: [UInt8], issuedAt: Double, local: @Sendable () async throws -> TokenResponse
    ) async throws -> TokenResponse {
        let response: TokenResponse
        do {
            response = try await local()
        } catch {
            _ = try? await withStoreTimeout("release") { try await self.store.release(keyDigest, holder: self.holder) }
            throw error
        }
        events(.miss)
        do {
            let token = StoredToken(response, issuedAt: issuedAt)
            let row = SealedTokenRow(
                sealed: try keys.seal(try token.encoded(), keyDigest: keyDigest), keyID: keys.current.id,
                tokenDigest: StoredToken.digest(of: response.accessToken), issuedAt: issuedAt,
                refreshAfter: TokenCacheStateMachine.refreshAfter(
                    lifetime: Double(response.expiresIn), settings: settings.cache),
                lifetime: response.expiresIn)
            try await withStoreTimeout("publish") {
                try await self.store.publish(keyDigest, row: row, holder: self.holder)
            }
        } catch {
            // Reported by withStoreTimeout (or a sealing failure, which cannot carry the token).
        }
        return response
    }

    private func open(_ sealed: [UInt8], row: StoredTokenRow, keyDigest: [UInt8]) -> Result<
        StoredToken, TokenStoreOpenError
    > {
        do {
            let plaintext = try keys.open(sealed, keyID: row.keyID, keyDigest: keyDigest)
            let token = try StoredToken.decode(plaintext)
            // The clear digest must name the sealed token, or compare-and-invalidate could miss it.
            guard StoredToken.digest(of: token.accessToken) == row.tokenDigest else { return .failure(.notAuthentic) }
            return .success(token)
        } catch {
            return .failure(error)
        }
    }

    private func refusedDigests() -> [[UInt8]] {
        let now = clock()
        return state.withLockedValue { state in state.refused.filter { $0.value > now }.map(\.key) }
    }

    private func shouldUseStore() -> Bool {
        let now = clock()
        return state.withLockedValue { $0.health.shouldUse(now: now) }
    }

    /// Runs one store operation within ``Settings/timeout``, recording success or failure. The
    /// operation is cancelled, not awaited, when the time is up, so a store that hangs cannot
    /// hold a callout past it.
    private func withStoreTimeout<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        do {
            let value = try await Self.race(timeout: settings.timeout, body)
            let now = clock()
            if let outage = state.withLockedValue({ $0.health.succeeded(now: now) }) {
                events(.available(afterSeconds: outage))
            }
            return value
        } catch {
            let reason = error is TimedOut ? "timed out" : describeError(error)
            let now = clock()
            let newlyDown = state.withLockedValue { $0.health.failed(now: now, reason: reason) }
            events(.error(operation: operation, reason: reason))
            if newlyDown { events(.unavailable(reason: reason)) }
            throw error
        }
    }

    struct TimedOut: Error, CustomStringConvertible {
        var description: String { "timed out" }
    }

    /// `body`'s result, or ``TimedOut`` after `timeout`, whichever comes first.
    public static func race<T: Sendable>(
        timeout: Duration, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let once = NIOLockedValueBox<CheckedContinuation<T, any Error>?>(nil)
        let work = NIOLockedValueBox<Task<Void, Never>?>(nil)
        return try await withCheckedThrowingContinuation { continuation in
            once.withLockedValue { $0 = continuation }
            let timer = Task {
                try? await Task.sleep(for: timeout)
                guard !Task.isCancelled, let c = once.withLockedValue({ $0.take() }) else { return }
                c.resume(throwing: TimedOut())
                work.withLockedValue { $0 }?.cancel()
            }
            let task = Task {
                let result: Result<T, any Error>
                do { result = .success(try await body()) } catch { result = .failure(error) }
                timer.cancel()
                once.withLockedValue { $0.take() }?.resume(with: result)
            }
            work.withLockedValue { $0 = task }
        }
    }

    /// A short description of a store error, without anything a row held.
    public static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        return String(text.prefix(300))
    }
}
