/// Whether callouts use the shared store now. A failure puts it aside for `retrySeconds`; after
/// that the next callouts try it again, and the first success brings it back. Transitions are
/// reported once each (one log line per outage, not one per callout).
public struct TokenStoreHealth: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case available
        /// Since `since` (monotonic seconds); tried again from `retryAt`.
        case unavailable(since: Double, retryAt: Double, reason: String)
    }

    public private(set) var state: State = .available
    public let retrySeconds: Double

    public init(retrySeconds: Double) { self.retrySeconds = max(0, retrySeconds) }

    /// Whether to use the store at `now`.
    public func shouldUse(now: Double) -> Bool {
        switch state {
        case .available: true
        case .unavailable(_, let retryAt, _): now >= retryAt
        }
    }

    /// An operation failed. Returns true when the store was available until now (report it).
    public mutating func failed(now: Double, reason: String) -> Bool {
        switch state {
        case .available:
            state = .unavailable(since: now, retryAt: now + retrySeconds, reason: reason)
            return true
        case .unavailable(let since, _, _):
            state = .unavailable(since: since, retryAt: now + retrySeconds, reason: reason)
            return false
        }
    }

    /// An operation succeeded. Returns how long the store was unavailable when this ends an
    /// outage (report it), else `nil`.
    public mutating func succeeded(now: Double) -> Double? {
        guard case .unavailable(let since, _, _) = state else { return nil }
        state = .available
        return now - since
    }

    public var isAvailable: Bool { state == .available }
}
