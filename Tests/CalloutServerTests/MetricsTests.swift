import CalloutCore
import CalloutServer
import Foundation
import Testing

@Suite(.serialized) struct MetricsTests {
    @Test func aScriptedScenarioMovesTheCounters() async throws {
        try await OpsHarness.with { h in
            let before = try await h.admin(.GET, "/metrics")
            #expect(before.status == 200)
            #expect(before.headers.first(name: "content-type")?.hasPrefix("text/plain") == true)
            #expect(OpsHarness.metric("callout_token_cache_hits_total", in: before.body) == 0)

            for _ in 0..<3 { #expect(try await h.callout("/callout:Acme/items").status == 200) }
            // 401 once: refresh and retry.
            h.upstream.setBehavior(.statusSequence([401]))
            #expect(try await h.callout("/callout:Acme/again").status == 200)
            // An alias nobody configured: labelled "unknown", never echoed.
            #expect(try await h.callout("/callout:Secret_Alias_xyz/items").status == 404)

            // A callout is counted just after its answer is written: wait (bounded) for the last one.
            var text = ""
            for _ in 0..<200 {
                text = try await h.admin(.GET, "/metrics").body
                if OpsHarness.metric("callout_requests_total", ["named_credential": "unknown"], in: text) != nil {
                    break
                }
                try await Task.sleep(for: .milliseconds(10))
            }
            let ok = ["named_credential": "Acme", "status_class": "2xx"]
            #expect(OpsHarness.metric("callout_requests_total", ok.merging(["retried": "false"]) { $1 }, in: text) == 3)
            #expect(OpsHarness.metric("callout_requests_total", ok.merging(["retried": "true"]) { $1 }, in: text) == 1)
            #expect(
                OpsHarness.metric(
                    "callout_requests_total", ["named_credential": "unknown", "status_class": "4xx"], in: text) == 1)
            #expect(!text.contains("Secret_Alias_xyz"))
            #expect(
                OpsHarness.metric("callout_request_duration_seconds_count", ["named_credential": "Acme"], in: text)
                    == 4)
            // The retried callout reached the upstream twice.
            #expect(
                OpsHarness.metric("callout_upstream_duration_seconds_count", ["named_credential": "Acme"], in: text)
                    == 5)
            // The first token and the refresh after the 401.
            #expect(
                OpsHarness.metric(
                    "callout_token_requests_total", ["external_credential": "Acme_API", "outcome": "success"], in: text)
                    == 2)
            #expect(
                OpsHarness.metric(
                    "callout_idp_request_duration_seconds_count", ["external_credential": "Acme_API"], in: text) == 2)
            #expect((OpsHarness.metric("callout_token_cache_hits_total", in: text) ?? 0) >= 2)
            #expect((OpsHarness.metric("callout_token_cache_misses_total", in: text) ?? 0) >= 2)
            #expect((OpsHarness.metric("callout_token_cache_invalidations_total", in: text) ?? 0) >= 1)
            #expect(OpsHarness.metric("callout_token_cache_size", in: text) == 1)
            #expect(OpsHarness.metric("callout_open_connections", in: text) != nil)
            #expect(OpsHarness.metric("callout_config_generation", in: text) == 1)
            #expect(text.contains("callout_request_duration_seconds_bucket"))

            // Counters read from the cache at scrape time never count twice.
            let again = try await h.admin(.GET, "/metrics").body
            #expect(
                OpsHarness.metric("callout_token_cache_hits_total", in: again)
                    == OpsHarness.metric("callout_token_cache_hits_total", in: text))
        }
    }

    @Test func identityProviderFailuresAreCountedByOutcome() async throws {
        try await OpsHarness.with { h in
            h.idp.setFault(.serverError(503))
            let failed = try await h.callout("/callout:Acme/items")
            #expect(failed.status >= 500)
            let text = try await h.admin(.GET, "/metrics").body
            let failures = OpsHarness.metric(
                "callout_token_requests_total",
                ["external_credential": "Acme_API", "outcome": "identity_provider_unavailable"], in: text)
            #expect(failures == 1)
            #expect(OpsHarness.metric("callout_token_cache_fetch_failures_total", in: text) == 1)
        }
    }

    @Test func servicesKeepSeparateRegistries() async throws {
        let a = ProxyMetrics()
        let b = ProxyMetrics()
        #expect(a.registry !== b.registry)
        #expect(
            OpsHarness.metric("callout_token_cache_size", in: a.scrape(cache: .init(), openConnections: 3)) == 0)
        #expect(OpsHarness.metric("callout_open_connections", in: a.scrape(cache: .init(), openConnections: 3)) == 3)
        #expect(OpsHarness.metric("callout_open_connections", in: b.scrape(cache: .init(), openConnections: 0)) == 0)
    }
}
