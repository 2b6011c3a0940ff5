import CalloutCore
import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import CalloutTokens

/// The shared store's pure parts, and ``SharedTokens`` over an in-memory store: no sockets.
@Suite struct TokenStoreTests {
    static let key = TokenCacheKey(
        issuer: TokenIssuer(
            externalCredential: "Acme_API", principal: "Reader", clientId: "acme-reader",
            identityProviderURL: "https://idp.example/token", signingKeyFingerprint: "ab", algorithm: "RS256"),
        scope: "read", claims: ["sub": "alice"])

    static func randomKey() -> [UInt8] { (0..<32).map { _ in UInt8.random(in: 0...255) } }

    // MARK: Keys

    @Test func aSealedTokenOpensOnlyForItsRowAndKey() throws {
        let raw = Self.randomKey()
        let keys = try TokenStoreKeys(current: raw)
        let digest = Self.key.storeDigest
        let sealed = try keys.seal(Array("secret".utf8), keyDigest: digest)
        #expect(try keys.open(sealed, keyID: keys.current.id, keyDigest: digest) == Array("secret".utf8))
        #expect(!sealed.containsSubsequence(Array("secret".utf8)))
        // Moved to another row.
        let other = TokenCacheKey(issuer: Self.key.issuer, scope: "write").storeDigest
        #expect(throws: TokenStoreOpenError.notAuthentic) {
            try keys.open(sealed, keyID: keys.current.id, keyDigest: other)
        }
        // One bit flipped.
        var altered = sealed
        altered[altered.count / 2] ^= 1
        #expect(throws: TokenStoreOpenError.notAuthentic) {
            try keys.open(altered, keyID: keys.current.id, keyDigest: digest)
        }
        // Another replica's key.
        let stranger = try TokenStoreKeys(current: Self.randomKey())
        #expect(throws: TokenStoreOpenError.unknownKey) {
            try stranger.open(sealed, keyID: keys.current.id, keyDigest: digest)
        }
        // After a rotation: the old key opens, the new one seals.
        let rotated = try TokenStoreKeys(current: Self.randomKey(), previous: [raw])
        #expect(try rotated.open(sealed, keyID: keys.current.id, keyDigest: digest) == Array("secret".utf8))
        #expect(rotated.current.id != keys.current.id)
    }

    @Test func keysAreThirtyTwoBytesOfBase64() throws {
        let raw = Self.randomKey()
        #expect(try TokenStoreKeys.decode(base64: Data(raw).base64EncodedString() + "\n") == raw)
        let urlSafe = Data(raw).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        #expect(try TokenStoreKeys.decode(base64: urlSafe) == raw)
        #expect(throws: TokenStoreKeyError.wrongLength(16)) {
            try TokenStoreKeys.decode(base64: Data(raw.prefix(16)).base64EncodedString())
        }
        #expect(throws: TokenStoreKeyError.notBase64) { try TokenStoreKeys.decode(base64: "not base64!") }
    }

    @Test func rowDigestsDifferWheneverTheCacheKeyDoes() {
        let base = Self.key
        let variants = [
            TokenCacheKey(issuer: base.issuer, scope: nil, claims: ["sub": "alice"]),
            TokenCacheKey(issuer: base.issuer, scope: "", claims: ["sub": "alice"]),
            TokenCacheKey(issuer: base.issuer, scope: "read", claims: ["sub": "bob"]),
            TokenCacheKey(
                issuer: TokenIssuer(
                    externalCredential: "Acme_API", principal: "Reader", clientId: "acme-reader",
                    identityProviderURL: "https://idp.example/token", signingKeyFingerprint: "ab", algorithm: "RS512"),
                scope: "read", claims: ["sub": "alice"]),
            // Field boundaries: "ab" + "c" is not "a" + "bc".
            TokenCacheKey(
                issuer: TokenIssuer(
                    externalCredential: "Acme_AP", principal: "IReader", clientId: "acme-reader",
                    identityProviderURL: "https://idp.example/token", signingKeyFingerprint: "ab", algorithm: "RS256"),
                scope: "read", claims: ["sub": "alice"]),
        ]
        let digests = Set(([base] + variants).map(\.storeDigest))
        #expect(digests.count == variants.count + 1)
        #expect(base.storeDigest == Self.key.storeDigest)
    }

    // MARK: Decisions

    @Test func aStoredTokenIsServedUntilItsRefreshPoint() {
        let token = StoredToken(accessToken: "t", tokenType: "Bearer", scope: nil, issuedAt: 1000, lifetime: 100)
        let digest = StoredToken.digest(of: "t")
        func decide(_ now: Double, refused: Set<[UInt8]> = []) -> StoredTokenDecision {
            StoredTokenDecision.decide(
                token, digest: digest, now: now,
                cache: TokenCacheSettings(refreshAheadRatio: 0.8, expirySkewSeconds: 10),
                refused: refused)
        }
        #expect(decide(1000) == .serve)
        // The cache's own refresh point: 0.8 of the life left after the 10 s skew (72 s).
        #expect(decide(1071.9) == .serve)
        #expect(decide(1072) == .stale)
        let cache = TokenCacheStateMachine(settings: TokenCacheSettings(refreshAheadRatio: 0.8, expirySkewSeconds: 10))
        let cached = AccessToken(value: "t", tokenType: "Bearer", scope: nil, issuedAt: 1000, expiresAt: 1100, id: 1)
        #expect(cache.refreshAfter(cached) == 72, "a replica refreshes when the store stops handing the token out")
        #expect(decide(2000) == .stale)
        #expect(decide(996) == .serve, "a little in the store's future")
        #expect(decide(990) == .stale, "far in the future: not trusted")
        #expect(decide(1010, refused: [digest]) == .refused)
        #expect(token.response(at: 1030).issuedSecondsAgo == 30)
        #expect(token.response(at: 1030).origin == .tokenStore)
        #expect(!"\(token)".contains("\"t\"") && "\(token)".contains("redacted"))
    }

    @Test func healthReportsEachOutageOnceAndRetriesAfterItsPause() {
        var health = TokenStoreHealth(retrySeconds: 5)
        #expect(health.shouldUse(now: 0))
        #expect(health.failed(now: 10, reason: "refused") == true)
        #expect(!health.shouldUse(now: 14.9))
        #expect(health.shouldUse(now: 15))
        #expect(health.failed(now: 15, reason: "refused") == false, "the same outage")
        #expect(!health.shouldUse(now: 19))
        #expect(health.succeeded(now: 21) == 11)
        #expect(health.isAvailable)
        #expect(health.succeeded(now: 22) == nil)
    }

    // MARK: SharedTokens over an in-memory store

    @Test func threeReplicasMissingTogetherFetchOnce() async throws {
        let store = MemoryStore()
        let keys = try TokenStoreKeys(current: Self.randomKey())
        let replicas = (0..<3).map { i in SharedTokens(store: store, keys: keys, holder: "replica-\(i)") }
        let fetches = NIOLockedValueBox(0)
        let tokens = try await withThrowingTaskGroup(of: TokenResponse.self) { group in
            for replica in replicas {
                group.addTask {
                    try await replica.fetch(Self.key) {
                        fetches.withLockedValue { $0 += 1 }
                        try await Task.sleep(for: .milliseconds(100))
                        return TokenResponse(accessToken: "shared-token", expiresIn: 300)
                    }
                }
            }
            return try await group.reduce(into: [TokenResponse]()) { $0.append($1) }
        }
        #expect(fetches.withLockedValue { $0 } == 1)
        #expect(tokens.map(\.accessToken) == ["shared-token", "shared-token", "shared-token"])
        #expect(tokens.filter { $0.origin == .tokenStore }.count == 2)
        #expect(!store.rawBytes.containsSubsequence(Array("shared-token".utf8)), "the token sealed in the store")
    }

    @Test func aRefusedTokenIsDroppedForTheFleetOnce() async throws {
        let store = MemoryStore()
        let keys = try TokenStoreKeys(current: Self.randomKey())
        let a = SharedTokens(store: store, keys: keys, holder: "a")
        let b = SharedTokens(store: store, keys: keys, holder: "b")
        let issued = NIOLockedValueBox(0)
        let fetch: @Sendable () async throws -> TokenResponse = {
            let n = issued.withLockedValue {
                $0 += 1
                return $0
            }
            return TokenResponse(accessToken: "token-\(n)", expiresIn: 300)
        }
        #expect(try await a.fetch(Self.key, local: fetch).accessToken == "token-1")
        #expect(try await b.fetch(Self.key, local: fetch).accessToken == "token-1")
        // Both see token-1 refused; the first invalidation drops it, the second finds token-2 or nothing.
        await a.invalidate(Self.key, accessToken: "token-1")
        #expect(try await a.fetch(Self.key, local: fetch).accessToken == "token-2")
        await b.invalidate(Self.key, accessToken: "token-1")
        #expect(try await b.fetch(Self.key, local: fetch).accessToken == "token-2")
        #expect(issued.withLockedValue { $0 } == 2)
    }

    @Test func aFailingOrHangingStoreFallsBackToTheLocalFetch() async throws {
        let store = MemoryStore()
        let keys = try TokenStoreKeys(current: Self.randomKey())
        let events = NIOLockedValueBox<[SharedTokens.Event]>([])
        let shared = SharedTokens(
            store: store, keys: keys, settings: .init(timeout: .milliseconds(200), retrySeconds: 1),
            events: { event in events.withLockedValue { $0.append(event) } })
        let local: @Sendable () async throws -> TokenResponse = { TokenResponse(accessToken: "local", expiresIn: 60) }
        store.mode.withLockedValue { $0 = .failing }
        #expect(try await shared.fetch(Self.key, local: local).origin == .identityProvider)
        // After retry_seconds the store is tried again; one that never answers is abandoned at the
        // timeout (it would sleep for a minute).
        try await Task.sleep(for: .milliseconds(1100))
        store.mode.withLockedValue { $0 = .hanging }
        #expect(
            try await shared.fetch(TokenCacheKey(issuer: Self.key.issuer, scope: "x"), local: local).accessToken
                == "local")
        #expect(events.withLockedValue { $0 }.contains(.error(operation: "read", reason: "timed out")))
        let recorded = events.withLockedValue { $0 }
        #expect(recorded.filter { if case .unavailable = $0 { true } else { false } }.count == 1, "\(recorded)")
        // Back: after retry_seconds the store is used again.
        store.mode.withLockedValue { $0 = .working }
        try await Task.sleep(for: .milliseconds(1100))
        _ = try await shared.fetch(Self.key, local: local)
        #expect(events.withLockedValue { $0 }.contains { if case .available = $0 { true } else { false } })
        #expect(shared.health.isAvailable)
    }

    @Test func aRowTheStoreKeepsButThisReplicaDoesNotServeIsNotWaitedFor() async throws {
        let store = MemoryStore()
        let keys = try TokenStoreKeys(current: Self.randomKey())
        let events = NIOLockedValueBox<[SharedTokens.Event]>([])
        let shared = SharedTokens(
            store: store, keys: keys, events: { event in events.withLockedValue { $0.append(event) } })
        // Sealed as issued far in the store's future: the store holds it as fresh, this replica
        // does not trust it, and no lease will ever come.
        let digest = Self.key.storeDigest
        let now = Date().timeIntervalSince1970
        let token = StoredToken(accessToken: "odd", tokenType: "Bearer", scope: nil, issuedAt: now + 600, lifetime: 900)
        try await store.publish(
            digest,
            row: SealedTokenRow(
                sealed: try keys.seal(try token.encoded(), keyDigest: digest), keyID: keys.current.id,
                tokenDigest: StoredToken.digest(of: "odd"), issuedAt: now + 600, refreshAfter: 600, lifetime: 900),
            holder: "elsewhere")
        let fetched = try await shared.fetch(Self.key) { TokenResponse(accessToken: "here", expiresIn: 300) }
        #expect(fetched.accessToken == "here")
        #expect(!events.withLockedValue { $0 }.contains(.leaseWait))
    }

    @Test func anAlteredRowIsAMissNeverAToken() async throws {
        let store = MemoryStore()
        let keys = try TokenStoreKeys(current: Self.randomKey())
        let events = NIOLockedValueBox<[SharedTokens.Event]>([])
        let shared = SharedTokens(
            store: store, keys: keys, events: { event in events.withLockedValue { $0.append(event) } })
        _ = try await shared.fetch(Self.key) { TokenResponse(accessToken: "first", expiresIn: 300) }
        store.alterSealed(Self.key.storeDigest)
        let next = try await shared.fetch(Self.key) { TokenResponse(accessToken: "second", expiresIn: 300) }
        #expect(next.accessToken == "second")
        #expect(events.withLockedValue { $0 }.contains(.rejectedRow(.notAuthentic)))
    }
}

/// ``SharedTokenStore`` in memory, on the wall clock, with the PostgreSQL store's rules.
final class MemoryStore: SharedTokenStore, @unchecked Sendable {
    enum Mode { case working, failing, hanging }
    struct Row {
        var sealed: [UInt8]?
        var keyID: [UInt8] = []
        var tokenDigest: [UInt8] = []
        var refreshAt = 0.0
        var expiresAt = 0.0
        var leaseHolder: String?
        var leaseUntil = 0.0
    }
    struct Down: Error {}

    let rows = NIOLockedValueBox<[[UInt8]: Row]>([:])
    let mode = NIOLockedValueBox(Mode.working)
    var now: Double { Date().timeIntervalSince1970 }

    var rawBytes: [UInt8] { rows.withLockedValue { $0.values.flatMap { $0.sealed ?? [] } } }

    func alterSealed(_ key: [UInt8]) {
        rows.withLockedValue { rows in
            if var sealed = rows[key]?.sealed {
                sealed[sealed.count / 2] ^= 1
                rows[key]?.sealed = sealed
            }
        }
    }

    private func check() async throws {
        switch mode.withLockedValue({ $0 }) {
        case .working: return
        case .failing: throw Down()
        case .hanging: try await Task.sleep(for: .seconds(60))
        }
    }

    func read(_ keyDigest: [UInt8]) async throws -> StoredTokenRow? {
        try await check()
        let now = now
        return rows.withLockedValue { rows in
            rows[keyDigest].map {
                StoredTokenRow(
                    sealed: $0.sealed, keyID: $0.keyID, tokenDigest: $0.tokenDigest, now: now,
                    leaseHeld: $0.leaseHolder != nil && $0.leaseUntil > now)
            }
        }
    }

    func claim(_ keyDigest: [UInt8], holder: String, leaseSeconds: Int, stale: [[UInt8]]) async throws -> Double? {
        try await check()
        let now = now
        return rows.withLockedValue { rows in
            var row = rows[keyDigest] ?? Row()
            let leaseFree = row.leaseHolder == nil || row.leaseUntil <= now
            let tokenStale = row.sealed == nil || row.refreshAt <= now || stale.contains(row.tokenDigest)
            guard leaseFree, tokenStale else { return nil }
            row.leaseHolder = holder
            row.leaseUntil = now + Double(leaseSeconds)
            rows[keyDigest] = row
            return now
        }
    }

    func publish(_ keyDigest: [UInt8], row: SealedTokenRow, holder: String) async throws {
        try await check()
        rows.withLockedValue { rows in
            var stored = rows[keyDigest] ?? Row()
            stored.sealed = row.sealed
            stored.keyID = row.keyID
            stored.tokenDigest = row.tokenDigest
            stored.refreshAt = row.issuedAt + row.refreshAfter
            stored.expiresAt = row.issuedAt + Double(row.lifetime)
            if stored.leaseHolder == holder { stored.leaseHolder = nil }
            rows[keyDigest] = stored
        }
    }

    func release(_ keyDigest: [UInt8], holder: String) async throws {
        try await check()
        rows.withLockedValue { rows in if rows[keyDigest]?.leaseHolder == holder { rows[keyDigest]?.leaseHolder = nil }
        }
    }

    func invalidate(_ keyDigest: [UInt8], tokenDigest: [UInt8]) async throws -> Bool {
        try await check()
        return rows.withLockedValue { rows in
            guard rows[keyDigest]?.tokenDigest == tokenDigest, rows[keyDigest]?.sealed != nil else { return false }
            rows[keyDigest]?.sealed = nil
            rows[keyDigest]?.tokenDigest = []
            return true
        }
    }

    func removeExpired() async throws -> Int {
        try await check()
        let now = now
        return rows.withLockedValue { rows in
            let expired = rows.filter { $0.value.expiresAt < now && $0.value.leaseUntil < now }.map(\.key)
            for key in expired { rows.removeValue(forKey: key) }
            return expired.count
        }
    }
}

extension Array where Element == UInt8 {
    func containsSubsequence(_ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, needle.count <= count else { return false }
        return (0...(count - needle.count)).contains { Array(self[$0..<($0 + needle.count)]) == needle }
    }
}
