/// Whether a stored token is served to a replica that asks, decided on the store's clock.
public enum StoredTokenDecision: Equatable, Sendable {
    /// Serve it.
    case serve
    /// Past its refresh point (or from the future by more than the tolerated skew): fetch a new one.
    case stale
    /// This replica saw an upstream refuse it.
    case refused

    /// A token issued up to this many seconds in the store's future is still accepted (the store
    /// clock read at a claim and at a later read may differ by a little between its servers).
    public static let futureTolerance = 5.0

    public static func decide(
        _ token: StoredToken, digest: [UInt8], now: Double, cache: TokenCacheSettings, refused: Set<[UInt8]>
    ) -> StoredTokenDecision {
        if refused.contains(digest) { return .refused }
        let age = now - token.issuedAt
        let refreshAfter = TokenCacheStateMachine.refreshAfter(lifetime: Double(token.lifetime), settings: cache)
        guard age >= -futureTolerance, age < refreshAfter else {
            return .stale
        }
        return .serve
    }
}
