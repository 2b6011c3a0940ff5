/// What the proxy knows of each issuer's token endpoint, as events arrive: a fetch started, it
/// succeeded, it failed. Pure: the driver (``TokenEndpointDiscovery``) performs the fetches and
/// the timed retries it is told to.
struct DiscoveryStateMachine: Sendable {
    enum Entry: Sendable, Equatable {
        /// A fetch is running; `previous` is the endpoint found before (still served meanwhile),
        /// `lastError` why the one before failed (a retry is still a failure until it succeeds).
        case fetching(attempt: Int, previous: String?, lastError: TokenEndpointDiscoveryError?)
        case resolved(String)
        /// The last fetch failed; the next one may start at `retryAt`.
        case failed(TokenEndpointDiscoveryError, attempt: Int, retryAt: Double, previous: String?)
    }

    /// What a token fetch for `issuer` should do.
    enum Demand: Equatable {
        case use(String)
        /// Start a fetch (the caller then waits for it).
        case start
        /// Wait for the running fetch.
        case wait
        case fail(TokenEndpointDiscoveryError)
    }

    /// Longest wait between attempts.
    static let maxBackoffSeconds = 60.0

    private(set) var entries: [String: Entry] = [:]

    /// Seconds to wait after the `attempt`-th failure in a row: 1, 2, 4 … 60.
    static func backoff(attempt: Int) -> Double {
        min(maxBackoffSeconds, Double(1 << min(max(attempt - 1, 0), 16)))
    }

    mutating func demand(_ issuer: String, now: Double) -> Demand {
        switch entries[issuer] {
        case .resolved(let endpoint): return .use(endpoint)
        case .fetching(_, let previous?, _): return .use(previous)
        case .fetching(_, nil, _): return .wait
        case .failed(_, _, _, let previous?): return .use(previous)
        case .failed(let error, let attempt, let retryAt, nil):
            guard now >= retryAt else {
                var error = error
                error.retryAfterSeconds = (retryAt - now).rounded(.up)
                return .fail(error)
            }
            entries[issuer] = .fetching(attempt: attempt + 1, previous: nil, lastError: error)
            return .start
        case nil:
            entries[issuer] = .fetching(attempt: 1, previous: nil, lastError: nil)
            return .start
        }
    }

    /// A fetch asked for at start or on reload (or by a scheduled retry): whether to start one.
    mutating func refresh(_ issuer: String) -> Bool {
        switch entries[issuer] {
        case .fetching: return false
        case .resolved(let endpoint):
            entries[issuer] = .fetching(attempt: 1, previous: endpoint, lastError: nil)
        case .failed(let error, let attempt, _, let previous):
            entries[issuer] = .fetching(attempt: attempt + 1, previous: previous, lastError: error)
        case nil:
            entries[issuer] = .fetching(attempt: 1, previous: nil, lastError: nil)
        }
        return true
    }

    mutating func succeeded(_ issuer: String, endpoint: String) {
        guard entries[issuer] != nil else { return }
        entries[issuer] = .resolved(endpoint)
    }

    /// Records a failure; returns the seconds until the retry to schedule.
    mutating func failed(_ issuer: String, _ error: TokenEndpointDiscoveryError, now: Double) -> Double? {
        guard case .fetching(let attempt, let previous, _) = entries[issuer] else { return nil }
        let wait = Self.backoff(attempt: attempt)
        entries[issuer] = .failed(error, attempt: attempt, retryAt: now + wait, previous: previous)
        return wait
    }

    /// Forgets issuers no longer configured.
    mutating func keep(only issuers: Set<String>) {
        entries = entries.filter { issuers.contains($0.key) }
    }

    /// The issuers whose last fetch failed (a retry may be running), with why.
    var failures: [String: TokenEndpointDiscoveryError] {
        var out: [String: TokenEndpointDiscoveryError] = [:]
        for (issuer, entry) in entries {
            switch entry {
            case .failed(let error, _, _, _), .fetching(_, _, let error?): out[issuer] = error
            default: break
            }
        }
        return out
    }
}
