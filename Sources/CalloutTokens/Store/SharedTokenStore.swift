/// A store replicas share tokens through (PostgreSQL in production). Rows are keyed by
/// ``TokenCacheKey/storeDigest``; tokens are sealed before they reach it. Every time is the
/// store's own clock, so replicas whose clocks disagree still agree on a token's age.
public protocol SharedTokenStore: Sendable {
    /// The row for `keyDigest`, or `nil` when there is none.
    func read(_ keyDigest: [UInt8]) async throws -> StoredTokenRow?

    /// Takes the lease for `keyDigest` for `leaseSeconds`, unless another replica's lease is
    /// current or the row holds a token that is still fresh (its refresh time not reached, its
    /// digest not in `stale`). Returns the store's clock when taken, `nil` when not.
    func claim(_ keyDigest: [UInt8], holder: String, leaseSeconds: Int, stale: [[UInt8]]) async throws -> Double?

    /// Writes a sealed token and ends `holder`'s lease.
    func publish(_ keyDigest: [UInt8], row: SealedTokenRow, holder: String) async throws

    /// Ends `holder`'s lease without a token (its exchange failed), so others need not wait.
    func release(_ keyDigest: [UInt8], holder: String) async throws

    /// Drops the row's token if it is still the one with `tokenDigest` (the token an upstream
    /// refused). Returns whether it was dropped.
    func invalidate(_ keyDigest: [UInt8], tokenDigest: [UInt8]) async throws -> Bool

    /// Removes rows whose token expired and whose lease is over. Returns how many.
    func removeExpired() async throws -> Int
}

/// A row as read.
public struct StoredTokenRow: Sendable, Equatable {
    /// Nonce, ciphertext and tag; `nil` when the row holds no token (a lease only, or invalidated).
    public var sealed: [UInt8]?
    public var keyID: [UInt8]
    public var tokenDigest: [UInt8]
    /// The store's clock (seconds since 1970) when it was read.
    public var now: Double
    /// Another replica holds a current lease on the key.
    public var leaseHeld: Bool

    public init(sealed: [UInt8]?, keyID: [UInt8], tokenDigest: [UInt8], now: Double, leaseHeld: Bool) {
        self.sealed = sealed
        self.keyID = keyID
        self.tokenDigest = tokenDigest
        self.now = now
        self.leaseHeld = leaseHeld
    }
}

/// A row to write: the sealed token with the times the store needs in clear for claims and
/// clean-up (the sealed copy of them is what decides serving).
public struct SealedTokenRow: Sendable, Equatable {
    public var sealed: [UInt8]
    public var keyID: [UInt8]
    public var tokenDigest: [UInt8]
    public var issuedAt: Double
    /// Seconds after `issuedAt` at which the token is no longer handed to a replica that asks
    /// (the refresh-ahead point).
    public var refreshAfter: Double
    public var lifetime: Int

    public init(
        sealed: [UInt8], keyID: [UInt8], tokenDigest: [UInt8], issuedAt: Double, refreshAfter: Double, lifetime: Int
    ) {
        self.sealed = sealed
        self.keyID = keyID
        self.tokenDigest = tokenDigest
        self.issuedAt = issuedAt
        self.refreshAfter = refreshAfter
        self.lifetime = lifetime
    }
}
