import CalloutTestSupport
import CalloutTokens
import Testing

private let key = TokenCacheKey(externalCredential: "Acme", principal: "Sales", scope: "api")

private struct Unavailable: TokenAcquisitionError {
    var code: String { "identity_provider_unavailable" }
    var httpStatus: Int { 503 }
    var retryAfterSeconds: Double? { 4 }
}

/// Waits (bounded, by yielding) until `condition` holds.
func eventually(_ condition: () -> Bool) async -> Bool {
    for _ in 0..<100_000 {
        if condition() { return true }
        await Task.yield()
    }
    return condition()
}

@Suite struct CacheTokenCacheTests {
    @Test func concurrentRequestsShareOneFetch() async throws {
        let cache = TokenCache(clock: ManualClock().read, random: { 0.5 })
        let calls = LockedState(0)
        let gate = Gate()
        let fetch: TokenCache.Fetch = {
            calls.withLock { $0 += 1 }
            await gate.wait()
            return TokenResponse(accessToken: "shared", expiresIn: 300)
        }
        try await withThrowingTaskGroup(of: AccessToken.self) { group in
            for _ in 0..<200 {
                group.addTask { try await cache.token(for: key, fetch: fetch) }
            }
            #expect(await eventually { cache.stats.misses == 200 })
            gate.open()
            var ids = Set<UInt64>()
            for try await token in group {
                #expect(token.value == "shared")
                ids.insert(token.id)
            }
            #expect(ids.count == 1)
        }
        #expect(calls.withLock { $0 } == 1)
        #expect(cache.stats.singleFlightJoins == 199)
        let again = try await cache.token(for: key, fetch: fetch)
        #expect(again.value == "shared")
        #expect(cache.stats.hits == 1)
    }

    @Test func cancelledWaiterLeavesOthersUnaffected() async throws {
        let cache = TokenCache(clock: ManualClock().read)
        let gate = Gate()
        let fetch: TokenCache.Fetch = {
            await gate.wait()
            return TokenResponse(accessToken: "t", expiresIn: 300)
        }
        let first = Task { try await cache.token(for: key, fetch: fetch) }
        let second = Task { try await cache.token(for: key, fetch: fetch) }
        let third = Task { try await cache.token(for: key, fetch: fetch) }
        #expect(await eventually { cache.stats.misses == 3 })
        second.cancel()
        await #expect(throws: CancellationError.self) { try await second.value }
        gate.open()
        #expect(try await first.value.value == "t")
        #expect(try await third.value.value == "t")
    }

    @Test func failureReachesAllWaitersThenFailsFastThenRecovers() async throws {
        let clock = ManualClock()
        let cache = TokenCache(clock: clock.read, random: { 1 })
        let gate = Gate()
        let failing: TokenCache.Fetch = {
            await gate.wait()
            throw Unavailable()
        }
        let waiters = (0..<5).map { _ in Task { try await cache.token(for: key, fetch: failing) } }
        #expect(await eventually { cache.stats.misses == 5 })
        gate.open()
        for waiter in waiters {
            await #expect(throws: Unavailable.self) { try await waiter.value }
        }
        clock.set(1)
        do {
            _ = try await cache.token(for: key, fetch: failing)
            Issue.record("expected fail fast")
        } catch let error as TokenCacheError {
            #expect(error.retryAfterSeconds == 3)  // Retry-After 4 s from t=0
            #expect(error.code == "identity_provider_unavailable")
        }
        clock.set(4)
        let token = try await cache.token(for: key) { TokenResponse(accessToken: "ok", expiresIn: 60) }
        #expect(token.value == "ok")
        #expect(cache.snapshot().first?.status == .fresh)
    }

    @Test func refreshAheadServesOldTokenAndFetchesOnceInBackground() async throws {
        let clock = ManualClock()
        let cache = TokenCache(clock: clock.read)
        let calls = LockedState(0)
        let fetch: TokenCache.Fetch = {
            let n = calls.withLock { count in
                count += 1
                return count
            }
            return TokenResponse(accessToken: "t\(n)", expiresIn: 100)
        }
        #expect(try await cache.token(for: key, fetch: fetch).value == "t1")
        clock.set(80)
        for _ in 0..<10 { #expect(try await cache.token(for: key, fetch: fetch).value == "t1") }
        #expect(await eventually { cache.snapshot().first?.status == .fresh })
        #expect(try await cache.token(for: key, fetch: fetch).value == "t2")
        #expect(calls.withLock { $0 } == 2)
        #expect(cache.stats.refreshAheadRuns == 1)
    }

    @Test func compareAndInvalidateThroughWrapper() async throws {
        let cache = TokenCache(clock: ManualClock().read)
        let calls = LockedState(0)
        let fetch: TokenCache.Fetch = {
            let n = calls.withLock { count in
                count += 1
                return count
            }
            return TokenResponse(accessToken: "t\(n)", expiresIn: 100)
        }
        let first = try await cache.token(for: key, fetch: fetch)
        // Ten concurrent 401s for the same token: one invalidation, one refetch.
        let dropped = (0..<10).filter { _ in cache.invalidate(key, ifTokenID: first.id) }.count
        #expect(dropped == 1)
        let second = try await cache.token(for: key, fetch: fetch)
        #expect(second.value == "t2")
        #expect(!cache.invalidate(key, ifTokenID: first.id))
        let forced = try await cache.forceRefresh(key, fetch: fetch)
        #expect(forced.value == "t3")
        #expect(cache.removeAll(externalCredential: "Acme") == 1)
        #expect(cache.stats.size == 0)
        let snapshotText = "\(cache.snapshot())"
        #expect(!snapshotText.contains("t3"))
    }
}
