import CalloutCore
import Foundation
import Testing

@testable import CalloutTokens

/// The refresh storm guard: a resource that is simply forbidden (a listed refresh status that no
/// new token cures) must not turn every callout into an identity provider call.
@Suite struct RefreshGuardTests {
    private let key = TokenCacheKey(externalCredential: "Acme", principal: "Admin", scope: nil)

    private func fetchToken(
        _ machine: inout TokenCacheStateMachine, now: Double, waiter: UInt64
    ) -> AccessToken? {
        guard case .wait(.some(let fetch)) = machine.request(key, now: now, waiter: waiter) else { return nil }
        return machine.fetchSucceeded(
            key, fetch: fetch,
            response: TokenResponse(accessToken: "t\(waiter)", tokenType: "Bearer", scope: nil, expiresIn: 3600),
            now: now
        ).token
    }

    @Test func onlyATokenThatReplacedARefusedOneIsGuardedAndOnlyForTheInterval() throws {
        var machine = TokenCacheStateMachine(settings: TokenCacheSettings(minRefreshIntervalSeconds: 10))
        let first = try #require(fetchToken(&machine, now: 0, waiter: 1))
        // A token fetched on demand may be refreshed at once when refused (e.g. revoked).
        #expect(machine.refreshGuardRemaining(first, now: 0) == nil)

        let dropped0 = machine.invalidate(key, ifTokenID: first.id)
        #expect(dropped0)
        #expect(machine.snapshot(now: 1).first?.status == .refused)
        let replacement = try #require(fetchToken(&machine, now: 1, waiter: 2))
        #expect(replacement.replacesRefused)
        #expect(machine.refreshGuardRemaining(replacement, now: 2) == 9)
        #expect(machine.refreshGuardRemaining(replacement, now: 10.9) != nil)
        #expect(machine.refreshGuardRemaining(replacement, now: 11) == nil)

        // Dropped by an operator (not refused): the next token is not guarded.
        let dropped1 = machine.invalidate(key)
        #expect(dropped1)
        let forced = try #require(fetchToken(&machine, now: 12, waiter: 3))
        #expect(!forced.replacesRefused)
    }

    @Test func zeroTurnsTheGuardOff() throws {
        var machine = TokenCacheStateMachine(settings: TokenCacheSettings(minRefreshIntervalSeconds: 0))
        let first = try #require(fetchToken(&machine, now: 0, waiter: 1))
        let dropped2 = machine.invalidate(key, ifTokenID: first.id)
        #expect(dropped2)
        let replacement = try #require(fetchToken(&machine, now: 0, waiter: 2))
        #expect(machine.refreshGuardRemaining(replacement, now: 0) == nil)
    }

    @Test func aGuardedRefusalIsDeliveredWithoutARefresh() throws {
        let credential = ExternalCredentialConfig(
            name: "Acme", identityProviderURL: URL(string: "https://idp.example/token")!, signingCertificate: "S",
            additionalRefreshStatusCodes: [403])
        func decide(_ status: Int, guarded: Bool, replayable: Bool = true) -> RetryDecision {
            RetryDecision.decide(
                status: status, attempt: 1, injectedToken: true, bodyReplayable: replayable, credential: credential,
                refreshGuarded: guarded)
        }
        #expect(decide(403, guarded: false) == .refreshAndReplay)
        #expect(decide(403, guarded: true) == .deliverRefreshGuarded)
        #expect(decide(401, guarded: true) == .deliverRefreshGuarded)
        #expect(decide(401, guarded: true, replayable: false) == .deliverRefreshGuarded)
        #expect(decide(200, guarded: true) == .deliver)
    }

    @Test func theIssuedTokenCarriesTheGuardAsAnInstant() {
        let now = ContinuousClock.now
        var token = IssuedToken(accessToken: "x", tokenType: "Bearer", tokenID: 1, fetched: true, expiresIn: 60)
        #expect(!token.isRefreshGuarded(at: now))
        token.refreshGuardedUntil = now + .seconds(5)
        #expect(token.isRefreshGuarded(at: now + .seconds(4)))
        #expect(!token.isRefreshGuarded(at: now + .seconds(5)))
    }
}
