/// Decides which occurrences of a repeated event are logged: the first of each kind, then at most
/// one per `interval`, each carrying how many were left unlogged since the last one. Pure: the
/// caller passes the time, so the rule is tested without a clock.
public struct LogRateLimiter<Kind: Hashable>: Sendable where Kind: Sendable {
    public let intervalNanoseconds: UInt64
    private var kinds: [Kind: (lastLogged: UInt64, suppressed: Int)] = [:]
    /// Distinct kinds remembered at most; beyond it the oldest is forgotten (and logs again).
    public let maxKinds: Int

    public init(intervalSeconds: Int, maxKinds: Int = 64) {
        self.intervalNanoseconds = UInt64(max(intervalSeconds, 0)) * 1_000_000_000
        self.maxKinds = max(maxKinds, 1)
    }

    /// Records one occurrence at `now` (nanoseconds of a monotonic clock). Returns the number of
    /// occurrences suppressed since the last logged one when this one should be logged, else nil.
    public mutating func admit(_ kind: Kind, now: UInt64) -> Int? {
        guard let entry = kinds[kind] else {
            if kinds.count >= maxKinds, let oldest = kinds.min(by: { $0.value.lastLogged < $1.value.lastLogged }) {
                kinds.removeValue(forKey: oldest.key)
            }
            kinds[kind] = (now, 0)
            return 0
        }
        if now &- entry.lastLogged >= intervalNanoseconds {
            kinds[kind] = (now, 0)
            return entry.suppressed
        }
        kinds[kind] = (entry.lastLogged, entry.suppressed + 1)
        return nil
    }
}
