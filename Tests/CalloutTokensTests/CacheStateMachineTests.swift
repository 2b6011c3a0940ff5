import CalloutTokens
import Testing

private let key = TokenCacheKey(externalCredential: "Acme", principal: "Sales", scope: "api")
private let otherKey = TokenCacheKey(externalCredential: "Acme", principal: "Support", scope: "api")

private struct FakeIdPError: TokenAcquisitionError {
    var code = "identity_provider_unavailable"
    var httpStatus = 503
    var retryAfterSeconds: Double?
}

private func response(_ value: String = "tok", expiresIn: Int = 100) -> TokenResponse {
    TokenResponse(accessToken: value, tokenType: "Bearer", scope: "api", expiresIn: expiresIn)
}

/// Starts a fetch for `key` at `now` with waiter 1 and completes it; returns the token.
private func prime(
    _ machine: inout TokenCacheStateMachine, _ key: TokenCacheKey = key, now: Double = 0,
    expiresIn: Int = 100
) -> AccessToken {
    guard case .wait(.some(let fetch)) = machine.request(key, now: now, waiter: 999) else {
        Issue.record("expected a fetch to start")
        return AccessToken(value: "", tokenType: "", scope: nil, issuedAt: 0, expiresAt: 0, id: 0)
    }
    return machine.fetchSucceeded(
        key, fetch: fetch, response: response(expiresIn: expiresIn), now: now
    ).token
}

@Suite struct CacheStateMachineTests {
    @Test func missWithoutWaiterChangesNothing() {
        var machine = TokenCacheStateMachine()
        guard case .needsWaiter = machine.request(key, now: 0, waiter: nil) else {
            Issue.record("expected needsWaiter")
            return
        }
        #expect(machine.count == 0)
        #expect(machine.stats == TokenCacheStats())
    }

    @Test func singleFlightManyRequestsOneFetch() {
        var machine = TokenCacheStateMachine()
        var started: [TokenCacheStateMachine.FetchID] = []
        for waiter in 1...100 {
            switch machine.request(key, now: 0, waiter: UInt64(waiter)) {
            case .wait(let fetch): if let fetch { started.append(fetch) }
            default: Issue.record("request \(waiter) did not wait")
            }
        }
        #expect(started.count == 1)
        let (token, completion) = machine.fetchSucceeded(
            key, fetch: started[0], response: response(), now: 2)
        #expect(completion.waiters == (1...100).map { UInt64($0) })
        #expect(completion.cached)
        #expect(token.issuedAt == 0)
        #expect(token.expiresAt == 100)
        #expect(machine.stats.misses == 100)
        #expect(machine.stats.singleFlightJoins == 99)
        guard case .returnToken(let served, nil) = machine.request(key, now: 3, waiter: nil) else {
            Issue.record("expected a hit")
            return
        }
        #expect(served == token)
        #expect(machine.stats.hits == 1)
    }

    @Test func failureGoesToAllWaitersThenFailsFast() {
        var machine = TokenCacheStateMachine()
        guard case .wait(.some(let fetch)) = machine.request(key, now: 0, waiter: 1) else {
            Issue.record("expected fetch")
            return
        }
        _ = machine.request(key, now: 0, waiter: 2)
        _ = machine.request(key, now: 0, waiter: 3)
        let completion = machine.fetchFailed(
            key, fetch: fetch, error: FakeIdPError(), retryAfter: nil, jitter: 1, now: 1)
        #expect(completion.waiters == [1, 2, 3])
        // First failure: base 0.5 s with jitter 1 → 0.5 s window, until 1.5.
        guard case .failFast(let error) = machine.request(key, now: 1.25, waiter: 4) else {
            Issue.record("expected fail fast")
            return
        }
        #expect(error.retryAfterSeconds == 0.25)
        #expect(error.code == "identity_provider_unavailable")
        #expect(error.httpStatus == 503)
        #expect(machine.stats.failFasts == 1)
        #expect(machine.stats.fetchFailures == 1)
    }

    @Test func recoveryAfterBackoffWindow() {
        var machine = TokenCacheStateMachine()
        guard case .wait(.some(let first)) = machine.request(key, now: 0, waiter: 1) else { return }
        _ = machine.fetchFailed(
            key, fetch: first, error: FakeIdPError(), retryAfter: nil, jitter: 1, now: 0)
        guard case .wait(.some(let second)) = machine.request(key, now: 0.5, waiter: 2) else {
            Issue.record("expected a new fetch once the window ended")
            return
        }
        let (token, completion) = machine.fetchSucceeded(
            key, fetch: second, response: response(), now: 1)
        #expect(completion.waiters == [2])
        guard case .returnToken(let served, nil) = machine.request(key, now: 2, waiter: nil) else {
            Issue.record("expected a hit after recovery")
            return
        }
        #expect(served == token)
        // Success resets the failure count: the next failure starts from the base again.
        _ = machine.invalidate(key, ifTokenID: token.id)
        guard case .wait(.some(let third)) = machine.request(key, now: 3, waiter: 3) else { return }
        _ = machine.fetchFailed(
            key, fetch: third, error: FakeIdPError(), retryAfter: nil, jitter: 1, now: 3)
        guard case .failFast(let error) = machine.request(key, now: 3, waiter: 4) else { return }
        #expect(error.retryAfterSeconds == 0.5)
    }

    @Test func backoffGrowsAndIsCapped() {
        var machine = TokenCacheStateMachine()
        var now = 0.0
        var windows: [Double] = []
        for waiter in 1...10 {
            guard case .wait(.some(let fetch)) = machine.request(key, now: now, waiter: UInt64(waiter))
            else {
                Issue.record("expected fetch at attempt \(waiter)")
                return
            }
            _ = machine.fetchFailed(
                key, fetch: fetch, error: FakeIdPError(), retryAfter: nil, jitter: 1, now: now)
            guard case .failFast(let error) = machine.request(key, now: now, waiter: nil) else { return }
            windows.append(error.retryAfterSeconds!)
            now += error.retryAfterSeconds!
        }
        #expect(windows == [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30])
    }

    @Test func backoffJitterIsDeterministic() {
        let settings = TokenCacheSettings()
        #expect(
            TokenCacheStateMachine.backoffDelay(
                failures: 1, jitter: 0, retryAfter: nil, settings: settings) == 0.25)
        #expect(
            TokenCacheStateMachine.backoffDelay(
                failures: 3, jitter: 0.5, retryAfter: nil, settings: settings) == 1.5)
        #expect(
            TokenCacheStateMachine.backoffDelay(
                failures: 100, jitter: 0, retryAfter: nil, settings: settings) == 15)
        #expect(
            TokenCacheStateMachine.backoffDelay(failures: 1, jitter: 0, retryAfter: 2, settings: settings)
                == 2)
        #expect(
            TokenCacheStateMachine.backoffDelay(
                failures: 1, jitter: 0, retryAfter: 9999, settings: settings) == 300)
    }

    @Test func retryAfterIsHonoured() {
        var machine = TokenCacheStateMachine()
        guard case .wait(.some(let fetch)) = machine.request(key, now: 10, waiter: 1) else { return }
        _ = machine.fetchFailed(
            key, fetch: fetch, error: FakeIdPError(retryAfterSeconds: 7), retryAfter: 7, jitter: 0,
            now: 10)
        guard case .failFast(let error) = machine.request(key, now: 12, waiter: 2) else {
            Issue.record("expected fail fast inside Retry-After")
            return
        }
        #expect(error.retryAfterSeconds == 5)
        guard case .wait(.some) = machine.request(key, now: 17, waiter: 3) else {
            Issue.record("expected retry after Retry-After")
            return
        }
    }

    /// 100 s tokens, skew 10 s: usable for 90 s, refreshed from 80 % of that (72 s).
    @Test func refreshAheadAtEightyPercentOfTheUsableLifeRunsOnceAndKeepsServing() {
        var machine = TokenCacheStateMachine()
        let token = prime(&machine, now: 0, expiresIn: 100)
        guard case .returnToken(_, nil) = machine.request(key, now: 71.9, waiter: nil) else {
            Issue.record("no refresh before 80%")
            return
        }
        guard
            case .returnToken(let served, .some(let refresh)) = machine.request(key, now: 72, waiter: nil)
        else {
            Issue.record("expected a background refresh at 80%")
            return
        }
        #expect(served == token)
        for step in 1...9 {
            guard
                case .returnToken(let again, nil) = machine.request(
                    key, now: 72 + Double(step), waiter: nil)
            else {
                Issue.record("expected the old token without a second refresh")
                return
            }
            #expect(again == token)
        }
        #expect(machine.stats.refreshAheadRuns == 1)
        let (fresh, completion) = machine.fetchSucceeded(
            key, fetch: refresh, response: response("new"), now: 85)
        #expect(completion.waiters.isEmpty)
        #expect(fresh.id != token.id)
        #expect(fresh.issuedAt == 72)
        guard case .returnToken(let newer, nil) = machine.request(key, now: 86, waiter: nil) else {
            return
        }
        #expect(newer == fresh)
    }

    @Test func expirySkewTurnsTokenIntoMiss() {
        var machine = TokenCacheStateMachine(settings: TokenCacheSettings(refreshAheadRatio: 1))
        _ = prime(&machine, now: 0, expiresIn: 100)
        guard case .returnToken = machine.request(key, now: 89.999, waiter: nil) else {
            Issue.record("usable just before expiresAt - skew")
            return
        }
        guard case .needsWaiter = machine.request(key, now: 90, waiter: nil) else {
            Issue.record("never served at expiresAt - skew")
            return
        }
        guard case .wait(.some) = machine.request(key, now: 90, waiter: 1) else {
            Issue.record("expired token counts as missing")
            return
        }
    }

    @Test func expiryDuringRefreshAheadMakesRequestsJoinTheFetch() {
        var machine = TokenCacheStateMachine()
        _ = prime(&machine, now: 0, expiresIn: 100)
        guard case .returnToken(_, .some(let refresh)) = machine.request(key, now: 80, waiter: nil)
        else { return }
        guard case .wait(nil) = machine.request(key, now: 95, waiter: 7) else {
            Issue.record("expected to join the running refresh")
            return
        }
        let (_, completion) = machine.fetchSucceeded(key, fetch: refresh, response: response(), now: 96)
        #expect(completion.waiters == [7])
    }

    @Test func failedRefreshAheadKeepsServingUsableToken() {
        var machine = TokenCacheStateMachine()
        let token = prime(&machine, now: 0, expiresIn: 100)
        guard case .returnToken(_, .some(let refresh)) = machine.request(key, now: 80, waiter: nil)
        else { return }
        _ = machine.fetchFailed(
            key, fetch: refresh, error: FakeIdPError(), retryAfter: nil, jitter: 1, now: 81)
        guard case .returnToken(let served, nil) = machine.request(key, now: 81.2, waiter: nil) else {
            Issue.record("usable token still served while backing off")
            return
        }
        #expect(served == token)
        guard case .returnToken(_, .some) = machine.request(key, now: 81.5, waiter: nil) else {
            Issue.record("refresh retried after the window")
            return
        }
    }

    @Test func compareAndInvalidateIgnoresStaleTokenID() {
        var machine = TokenCacheStateMachine()
        let first = prime(&machine, now: 0)
        let outcome1 = machine.invalidate(key, ifTokenID: first.id)
        #expect(outcome1)
        let second = prime(&machine, now: 1)
        // A burst of 401s for the first token: none of them drops the second.
        for _ in 0..<10 {
            let dropped = machine.invalidate(key, ifTokenID: first.id)
            #expect(!dropped)
        }
        guard case .returnToken(let served, _) = machine.request(key, now: 2, waiter: nil) else {
            Issue.record("second token still cached")
            return
        }
        #expect(served == second)
        #expect(machine.stats.invalidations == 1)
    }

    @Test func invalidateDuringFetchIsIgnoredAndUnknownKeyIsFalse() {
        var machine = TokenCacheStateMachine()
        let outcome2 = machine.invalidate(key, ifTokenID: 1)
        #expect(!outcome2)
        guard case .wait(.some) = machine.request(key, now: 0, waiter: 1) else { return }
        let outcome3 = machine.invalidate(key, ifTokenID: 1)
        #expect(!outcome3)
        let outcome4 = machine.invalidate(key)
        #expect(!outcome4)
    }

    @Test func cancelledWaiterIsNotResumedButOthersAre() {
        var machine = TokenCacheStateMachine()
        guard case .wait(.some(let fetch)) = machine.request(key, now: 0, waiter: 1) else { return }
        _ = machine.request(key, now: 0, waiter: 2)
        _ = machine.request(key, now: 0, waiter: 3)
        let outcome5 = machine.cancelWaiter(2, key: key)
        #expect(outcome5)
        let outcome6 = machine.cancelWaiter(2, key: key)
        #expect(!outcome6)
        let (_, completion) = machine.fetchSucceeded(key, fetch: fetch, response: response(), now: 1)
        #expect(completion.waiters == [1, 3])
        let outcome7 = machine.cancelWaiter(1, key: key)
        #expect(!outcome7)
    }

    @Test func lruEvictsLeastRecentlyUsedAndKeepsBound() {
        var machine = TokenCacheStateMachine(settings: TokenCacheSettings(maxEntries: 3))
        let keys = (0..<5).map {
            TokenCacheKey(externalCredential: "E", principal: "p\($0)", scope: nil)
        }
        for index in 0..<3 { _ = prime(&machine, keys[index], now: 0) }
        // Use key 0 so key 1 becomes least recently used.
        _ = machine.request(keys[0], now: 1, waiter: nil)
        _ = prime(&machine, keys[3], now: 2)
        #expect(machine.count == 3)
        #expect(machine.snapshot(now: 2).map(\.key.principal) == ["p3", "p0", "p2"])
        _ = prime(&machine, keys[4], now: 3)
        #expect(machine.snapshot(now: 3).map(\.key.principal) == ["p4", "p3", "p0"])
        #expect(machine.stats.evictions == 2)
        #expect(machine.stats.size == 3)
    }

    @Test func lruDoesNotEvictKeysWithFetchInFlight() {
        var machine = TokenCacheStateMachine(settings: TokenCacheSettings(maxEntries: 2))
        let keys = (0..<3).map {
            TokenCacheKey(externalCredential: "E", principal: "p\($0)", scope: nil)
        }
        guard case .wait(.some(let inFlight)) = machine.request(keys[0], now: 0, waiter: 1) else {
            return
        }
        _ = prime(&machine, keys[1], now: 0)
        _ = prime(&machine, keys[2], now: 1)
        #expect(Set(machine.snapshot(now: 1).map(\.key.principal)) == ["p0", "p2"])
        let (_, completion) = machine.fetchSucceeded(
            keys[0], fetch: inFlight, response: response(), now: 2)
        #expect(completion.waiters == [1])
        #expect(completion.cached)
    }

    @Test func removeAllOrphansInFlightFetchesWithoutCachingThem() {
        var machine = TokenCacheStateMachine()
        guard case .wait(.some(let fetch)) = machine.request(key, now: 0, waiter: 1) else { return }
        _ = prime(&machine, otherKey, now: 0)
        let removed = machine.removeAll { $0.externalCredential == "Acme" }
        #expect(removed == 2)
        #expect(machine.count == 0)
        let (_, completion) = machine.fetchSucceeded(key, fetch: fetch, response: response(), now: 1)
        #expect(completion.waiters == [1])
        #expect(!completion.cached)
        #expect(machine.count == 0)
    }

    @Test func snapshotNeverHoldsTokenValue() {
        var machine = TokenCacheStateMachine()
        _ = prime(&machine, now: 0, expiresIn: 100)
        let snapshot = machine.snapshot(now: 30)
        #expect(snapshot.count == 1)
        #expect(snapshot[0].status == .fresh)
        #expect(snapshot[0].expiresInSeconds == 70)
        #expect(snapshot[0].ageSeconds == 30)
        #expect(!"\(snapshot)".contains("tok\""))
    }

    @Test func keyCanonicalisesClaimsAndIgnoresVolatileOnes() {
        let a = TokenCacheKey(
            externalCredential: "E", principal: "P", scope: nil,
            claims: ["sub": "alice", "aud": "x", "jti": "1", "iat": "5"])
        let b = TokenCacheKey(
            externalCredential: "E", principal: "P", scope: nil,
            claims: ["aud": "x", "sub": "alice", "jti": "2", "exp": "9"])
        let c = TokenCacheKey(
            externalCredential: "E", principal: "P", scope: nil, claims: ["aud": "x", "sub": "bob"])
        #expect(a == b)
        #expect(a != c)
        #expect(a.canonicalClaims == "aud=x&sub=alice")
        #expect(
            TokenCacheKey.canonicalize(["a": "1&b=2"])
                != TokenCacheKey.canonicalize(["a": "1", "b": "2"]))
        #expect(!"\(a)".contains("alice"))
    }

    @Test func accessTokenNeverPrintsItsValue() {
        let token = AccessToken(
            value: "s3cr3t-token", tokenType: "Bearer", scope: nil, issuedAt: 0, expiresAt: 300, id: 1)
        var dumped = ""
        dump(token, to: &dumped)
        for text in ["\(token)", String(reflecting: token), dumped, "\([token])"] {
            #expect(!text.contains("s3cr3t"))
        }
        #expect(
            "\(token)"
                == "AccessToken(id: 1, type: Bearer, expires in: 300s after issue, value: <redacted>)")
        #expect(token.authorizationHeaderValue == "Bearer s3cr3t-token")
        let response = TokenResponse(accessToken: "s3cr3t-token", expiresIn: 5)
        #expect(!"\(response)".contains("s3cr3t") && !String(reflecting: response).contains("s3cr3t"))
    }
}
