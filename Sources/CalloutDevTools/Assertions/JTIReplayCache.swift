import Foundation

/// Remembers assertion ids (`jti`, per issuer) until their `exp`, so an assertion is accepted
/// once. Bounded: when full, expired entries are dropped first and then the entry that expires
/// soonest. Keep `capacity` above the expected assertions per maximum lifetime.
public final class JTIReplayCache: @unchecked Sendable {
    private let lock = NSLock()
    private var expiries: [String: Int64] = [:]
    /// The most ids remembered at once.
    public let capacity: Int

    public init(capacity: Int = 10_000) {
        self.capacity = max(1, capacity)
    }

    /// Records `jti` for `issuer` until `expiresAt`. Returns `false` when it is already
    /// recorded and not yet expired (a replay).
    public func insertIfUnseen(jti: String, issuer: String, expiresAt: Int64, now: Int64) -> Bool {
        let key = issuer + "\u{0}" + jti
        return lock.withLock {
            if let existing = expiries[key], existing >= now { return false }
            if expiries.count >= capacity {
                expiries = expiries.filter { $0.value >= now }
            }
            if expiries.count >= capacity, let soonest = expiries.min(by: { $0.value < $1.value }) {
                expiries.removeValue(forKey: soonest.key)
            }
            expiries[key] = expiresAt
            return true
        }
    }

    /// How many ids are currently remembered (expired ones may linger until the next purge).
    public var count: Int {
        lock.withLock { expiries.count }
    }
}
