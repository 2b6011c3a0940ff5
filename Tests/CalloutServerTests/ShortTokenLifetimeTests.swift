import CalloutCore
import CalloutServer
import Foundation
import Testing

/// Short-lived tokens end to end: the development identity provider issues 8 s tokens (the cache
/// serves each for 6 s and refreshes it in the background from 4.8 s). The lifetime and the run
/// are short so the suite stays quick; the cache's pure tests cover 1 s to 3600 s.
@Suite(.serialized) struct ShortTokenLifetimeTests {
    static let readers = ("X-Callout-Permission-Sets", "Readers")
    static let lifetime = 8

    @Test func steadyCalloutsNeverWaitForAFetchAfterTheFirst() async throws {
        try await ProxyHarness.with { h in
            h.idp.setFault(.expiresIn(Self.lifetime))
            // 2.5 lifetimes of steady callouts: at least two refreshes happen meanwhile.
            let until = ContinuousClock.now + .seconds(Double(Self.lifetime) * 2.5)
            var callouts = 0
            var tokens: Set<String> = []
            while ContinuousClock.now < until {
                // A keep-alive client: this test is about tokens, not connections.
                let r = try await h.direct(.GET, "/callout:Acme/steady", headers: [Self.readers])
                #expect(r.status == 200)
                if let authorization = r.echoed("Authorization") {
                    tokens.insert(String(authorization.dropFirst("Bearer ".count)))
                }
                callouts += 1
                try await Task.sleep(for: .milliseconds(150))
            }
            let stats = h.service.tokens.cache.stats
            #expect(callouts >= 10)
            #expect(stats.perCredential["Acme_API"]?.waits == 1)
            #expect(stats.perCredential["Acme_API"]?.issuedLifetimeSeconds == Double(Self.lifetime))
            #expect(stats.refreshAheadRuns >= 2)
            // The metrics show the issued lifetime and the one wait, per external credential.
            let text = h.service.metrics.scrape(cache: stats, openConnections: 0)
            let acme = ["external_credential": "Acme_API"]
            #expect(OpsHarness.metric("callout_token_waits_total", acme, in: text) == 1)
            #expect(OpsHarness.metric("callout_token_issued_lifetime_seconds", acme, in: text) == 8)
            #expect(OpsHarness.metric("callout_token_short_lifetime_total", acme, in: text) == 1)
            // Reported once, as a warning naming the lifetime.
            let warnings = h.logs.lines.filter { $0.contains("short token lifetime") }
            #expect(warnings.count == 1)
            #expect(warnings.first?.contains("living 8s") == true)
            // The audit line of every exchange: info, with jti and status, never the token.
            let audits = h.logs.lines.filter { $0.contains("token exchange") }
            #expect(audits.count >= 3)
            #expect(audits.allSatisfy { $0.contains("jti") && $0.contains("idp_status") })
            #expect(tokens.count >= 3)
            for line in audits {
                // Neither an access token nor a signed assertion (a compact JWS starts "eyJ").
                #expect(!tokens.contains { line.contains($0) })
                #expect(!line.contains("eyJ"))
            }
        }
    }

    @Test func prefetchKeepsAQuietKeyReady() async throws {
        try await ProxyHarness.with(config: { ProxyHarness.standardConfig($0, credentialSettings: "prefetch = true") })
        {
            h in
            h.idp.setFault(.expiresIn(Self.lifetime))
            #expect(try await h.viaProxy(.GET, "http://Acme/first", headers: [Self.readers]).status == 200)
            // Quiet past the first token's usable life (6 s), within its lifetime since the last use.
            try await Task.sleep(for: .seconds(7))
            #expect(try await h.viaProxy(.GET, "http://Acme/after-quiet", headers: [Self.readers]).status == 200)
            let stats = h.service.tokens.cache.stats
            #expect(stats.perCredential["Acme_API"]?.waits == 1)
            #expect(stats.refreshAheadRuns >= 1)
        }
    }
}
