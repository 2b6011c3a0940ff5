import CalloutTokens
import Testing

/// How the cache treats tokens of the lifetimes identity providers really issue, with the default
/// settings (refresh-ahead ratio 0.8, skew 10 s): when a token stops being served, when it is
/// refreshed, whether a steady caller ever waits, and what is reported.
@Suite struct TokenLifetimeTests {
    private let key = TokenCacheKey(externalCredential: "Acme", principal: "Admin", scope: nil)

    private func token(lifetime: Double) -> AccessToken {
        AccessToken(value: "t", tokenType: "Bearer", scope: nil, issuedAt: 0, expiresAt: lifetime, id: 1)
    }

    /// (lifetime, skew applied, served until, refresh-ahead from, reported as short)
    static let cases: [(Double, Double, Double, Double, Bool)] = [
        (1, 0.25, 0.75, 0.6, true),
        (5, 1.25, 3.75, 3, true),
        (30, 7.5, 22.5, 18, true),
        (60, 10, 50, 40, false),
        (3600, 10, 3590, 2872, false),
    ]

    @Test(arguments: cases)
    func usableLifeAndRefreshAhead(_ c: (Double, Double, Double, Double, Bool)) {
        let (lifetime, skew, servedUntil, refreshFrom, short) = c
        let machine = TokenCacheStateMachine()
        let t = token(lifetime: lifetime)
        #expect(machine.expirySkew(for: t) == skew)
        #expect(machine.isUsable(t, now: servedUntil - 0.001))
        #expect(!machine.isUsable(t, now: servedUntil))
        #expect(abs(machine.refreshAfter(t) - refreshFrom) < 1e-9)
        #expect(!machine.isDueForRefresh(t, now: refreshFrom - 0.001))
        #expect(machine.isDueForRefresh(t, now: refreshFrom + 1e-9))
        // Refresh-ahead is always due while the token is still served.
        #expect(refreshFrom < servedUntil)
        #expect(machine.isShortLived(t) == short)
    }

    /// A caller using the key every `lifetime / 20` seconds for five lifetimes, with fetches that
    /// take a tenth of the usable life to answer: only the very first request waits, the
    /// identity provider is called about once per refresh interval, and a short lifetime is
    /// reported exactly once.
    @Test(arguments: cases.map(\.0))
    func steadyCallerNeverWaitsAfterTheFirstToken(_ lifetime: Double) {
        var machine = TokenCacheStateMachine()
        let step = lifetime / 20
        let fetchDuration = lifetime * 0.05
        var pending: [(fetch: TokenCacheStateMachine.FetchID, answerAt: Double)] = []
        var waits = 0
        var fetches = 0
        var notices: [ShortLifetimeNotice] = []
        var waiter: UInt64 = 1
        var now = 0.0
        while now < lifetime * 5 {
            // Answer every fetch whose time has come.
            while let first = pending.first, first.answerAt <= now {
                pending.removeFirst()
                let result = machine.fetchSucceeded(
                    key, fetch: first.fetch,
                    response: TokenResponse(
                        accessToken: "t\(fetches)", tokenType: "Bearer", scope: nil, expiresIn: Int(lifetime)),
                    now: first.answerAt)
                if let notice = result.completion.shortLifetime { notices.append(notice) }
            }
            switch machine.request(key, now: now, waiter: waiter) {
            case .returnToken(let served, let refresh):
                #expect(machine.isUsable(served, now: now))
                if let refresh {
                    fetches += 1
                    pending.append((refresh, now + fetchDuration))
                }
            case .wait(let start):
                waits += 1
                if let start {
                    fetches += 1
                    pending.append((start, now + fetchDuration))
                }
                // The waiter is answered when the fetch completes; time moves on to then.
                now = pending.last?.answerAt ?? now
                continue
            case .failFast, .needsWaiter:
                Issue.record("unexpected action at \(now)")
            }
            waiter += 1
            now += step
        }
        #expect(waits == 1)
        #expect(machine.stats.perCredential["Acme"]?.waits == 1)
        #expect(machine.stats.perCredential["Acme"]?.issuedLifetimeSeconds == lifetime)
        // One fetch per refresh interval (plus the first), never one per callout.
        let refreshEvery = TokenCacheStateMachine().refreshAfter(token(lifetime: lifetime))
        #expect(fetches <= Int((lifetime * 5) / refreshEvery) + 2)
        #expect(fetches < 20 * 5 / 2)
        let short = lifetime < 40
        #expect(notices.count == (short ? 1 : 0))
        if let notice = notices.first {
            #expect(notice.externalCredential == "Acme")
            #expect(notice.lifetimeSeconds == lifetime)
            #expect(notice.description.contains("Acme"))
            #expect(notice.description.contains("token_expiry_skew_seconds"))
        }
    }

    @Test func aTokenThatLivesNoTimeIsReportedAsCallingTheIdentityProviderEveryTime() {
        var machine = TokenCacheStateMachine()
        guard case .wait(.some(let fetch)) = machine.request(key, now: 0, waiter: 1) else {
            Issue.record("expected a fetch")
            return
        }
        let result = machine.fetchSucceeded(
            key, fetch: fetch, response: TokenResponse(accessToken: "t", tokenType: "Bearer", scope: nil, expiresIn: 0),
            now: 0)
        #expect(!machine.isUsable(result.token, now: 0))
        #expect(result.completion.shortLifetime?.description.contains("every callout waits") == true)
    }

    @Test func theShortLifetimeIsReportedOncePerExternalCredential() {
        var machine = TokenCacheStateMachine()
        var reported: [String] = []
        for (i, name) in ["Acme", "Acme", "Beta", "Acme"].enumerated() {
            let k = TokenCacheKey(externalCredential: name, principal: "P\(i)", scope: nil)
            guard case .wait(.some(let fetch)) = machine.request(k, now: 0, waiter: UInt64(i + 1)) else {
                Issue.record("expected a fetch")
                return
            }
            let result = machine.fetchSucceeded(
                k, fetch: fetch,
                response: TokenResponse(accessToken: "t", tokenType: "Bearer", scope: nil, expiresIn: 5), now: 0)
            if let notice = result.completion.shortLifetime { reported.append(notice.externalCredential) }
        }
        #expect(reported == ["Acme", "Beta"])
        #expect(machine.stats.perCredential["Acme"]?.shortLifetimes == 1)
    }

    // MARK: Prefetch

    @Test func prefetchRefreshesRecentlyUsedKeysWithoutTraffic() {
        var machine = TokenCacheStateMachine()
        let other = TokenCacheKey(externalCredential: "Beta", principal: "Admin", scope: nil)
        for k in [key, other] {
            guard case .wait(.some(let fetch)) = machine.request(k, now: 0, waiter: 1) else {
                Issue.record("expected a fetch")
                return
            }
            _ = machine.fetchSucceeded(
                k, fetch: fetch,
                response: TokenResponse(accessToken: "t", tokenType: "Bearer", scope: nil, expiresIn: 30), now: 0)
        }
        // 30 s tokens: refresh-ahead from 18 s, served until 22.5 s.
        #expect(machine.prefetch(now: 17, where: { _ in true }).isEmpty)
        let started = machine.prefetch(now: 18, where: { $0 == key })
        #expect(started.map(\.key) == [key])
        #expect(machine.snapshot(now: 18).first { $0.key == key }?.status == .refreshingAhead)
        _ = machine.fetchSucceeded(
            key, fetch: started[0].fetch,
            response: TokenResponse(accessToken: "t2", tokenType: "Bearer", scope: nil, expiresIn: 30), now: 18.5)
        // Last used at 0: a key unused for a whole lifetime is no longer prefetched.
        #expect(machine.prefetch(now: 36, where: { $0 == key }).isEmpty)
        // A use makes it eligible again; the next callout never waits.
        guard case .returnToken = machine.request(key, now: 36.5, waiter: nil) else {
            Issue.record("expected the prefetched token")
            return
        }
        #expect(machine.stats.perCredential["Acme"]?.waits == 1)
    }
}
