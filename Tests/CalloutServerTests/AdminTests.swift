import CalloutCore
import CalloutServer
import Crypto
import Foundation
import Testing

@Suite(.serialized) struct AdminTests {
    @Test func healthReadinessAndErrors() async throws {
        try await OpsHarness.with { h in
            let health = try await h.admin(.GET, "/healthz")
            #expect(health.status == 200)
            #expect(health.json["status"] as? String == "alive")
            let ready = try await h.admin(.GET, "/readyz")
            #expect(ready.status == 200)
            #expect(ready.json["status"] as? String == "ready")

            let missing = try await h.admin(.GET, "/nope")
            #expect(missing.status == 404)
            #expect(missing.headers.first(name: "content-type") == "application/problem+json")
            #expect(missing.json["code"] as? String == "not_found")
            let wrongMethod = try await h.admin(.GET, "/reload")
            #expect(wrongMethod.status == 405)
            #expect(wrongMethod.headers.first(name: "allow") == "POST")
            let badSelection = try await h.admin(.POST, "/tokens/refresh")
            #expect(badSelection.status == 400)
            let unknown = try await h.admin(.DELETE, "/tokens?external_credential=Nope")
            #expect(unknown.status == 404)
            #expect(unknown.json["code"] as? String == "unknown_external_credential")
        }
    }

    @Test func readinessCanWaitForEveryCredentialsFirstToken() async throws {
        try await OpsHarness.with(config: { OpsHarness.config($0, proxySettings: "ready_requires_tokens = true") }) {
            h in
            let waiting = try await h.admin(.GET, "/readyz")
            #expect(waiting.status == 503)
            #expect(waiting.json["waiting_for"] as? [String] == ["token:Acme_API"])
            #expect(try await h.callout("/callout:Acme/items").status == 200)
            #expect(try await h.admin(.GET, "/readyz").status == 200)
        }
    }

    @Test func credentialsShowNamesStatesAndNoSecrets() async throws {
        try await OpsHarness.with { h in
            #expect(try await h.callout("/callout:Acme/items").status == 200)
            let response = try await h.admin(.GET, "/credentials")
            #expect(response.status == 200)
            #expect(response.headers.first(name: "content-type") == "application/json")
            let json = response.json
            #expect(json["generation"] as? Int == 1)
            let named = json["named_credentials"] as? [[String: Any]] ?? []
            #expect(named.map { $0["name"] as? String } == ["Acme", "Dormant"])
            #expect(named.first?["custom_headers"] as? [String] == ["X-Overridden"])
            let external = (json["external_credentials"] as? [[String: Any]])?.first ?? [:]
            #expect(external["name"] as? String == "Acme_API")
            #expect(external["signing_algorithm"] as? String == "RS256")
            #expect(external["token_fetched_once"] as? Bool == true)
            #expect(external["issued_token_lifetime_seconds"] as? Double == 300)
            #expect(external["callouts_waited_for_token"] as? Int == 1)
            let principals = external["principals"] as? [[String: Any]] ?? []
            #expect(principals.map { $0["name"] as? String } == ["Admin", "Reader"])
            #expect(principals.map { $0["sequence_number"] as? Int } == [5, 20])
            let certificate = (json["certificates"] as? [[String: Any]])?.first ?? [:]
            #expect(certificate["name"] as? String == "Local_Signing")
            #expect(certificate["key_type"] as? String == "RSA")
            #expect((certificate["subject"] as? String)?.contains("callout-proxy local signing key") == true)
            #expect(certificate["not_after"] is String)
            #expect(certificate["used_for"] as? [String] == ["signing"])
            let tokens = json["tokens"] as? [[String: Any]] ?? []
            #expect(tokens.count == 1)
            #expect(tokens.first?["principal"] as? String == "Reader")
            #expect(tokens.first?["token_present"] as? Bool == true)
            #expect((tokens.first?["expires_in_seconds"] as? Double ?? 0) > 0)
            #expect(tokens.first?["age_seconds"] is Double)
            for token in h.upstream.requests.compactMap(\.authorization) {
                #expect(!response.body.contains(token.replacingOccurrences(of: "Bearer ", with: "")))
            }
            #expect(!response.body.contains("PRIVATE KEY"))
        }
    }

    @Test func refreshAndDropTokens() async throws {
        try await OpsHarness.with { h in
            #expect(try await h.callout("/callout:Acme/items").status == 200)
            #expect(h.idp.tokenRequestCount == 1)
            let refreshed = try await h.admin(.POST, "/tokens/refresh?external_credential=Acme_API&principal=Reader")
            #expect(refreshed.status == 200, "\(refreshed.body)")
            #expect(refreshed.json["dropped"] as? Int == 1)
            let results = refreshed.json["results"] as? [[String: Any]] ?? []
            #expect(results.first?["principal"] as? String == "Reader")
            #expect(results.first.map { $0["outcome"] as? String } != nil)
            #expect(h.idp.tokenRequestCount >= 1)

            #expect(try await h.callout("/callout:Acme/items").status == 200)
            let removed = try await h.admin(.DELETE, "/tokens?external_credential=acme_api")
            #expect(removed.status == 200)
            #expect((removed.json["removed"] as? Int ?? 0) >= 1)
            let credentials = try await h.admin(.GET, "/credentials")
            #expect((credentials.json["tokens"] as? [Any])?.isEmpty == true)
            let count = h.idp.tokenRequestCount
            #expect(try await h.callout("/callout:Acme/items").status == 200)
            #expect(h.idp.tokenRequestCount == count + 1)
            let all = try await h.admin(.DELETE, "/tokens")
            #expect(all.json["removed"] as? Int == 1)
        }
    }

    @Test func explainOverHTTP() async throws {
        try await OpsHarness.with { h in
            let json = try await h.admin(
                .POST, "/explain",
                body:
                    #"{"method":"GET","url":"http://Acme/items?x=1","headers":{"X-Callout-Permission-Sets":"Admins"}}"#,
                headers: [("Content-Type", "application/json")])
            #expect(json.status == 200)
            #expect(json.json["outcome"] as? String == "forward")
            let lines = json.json["lines"] as? [String] ?? []
            #expect(lines.contains { $0.contains("→ 5. Admin as acme-admin") })
            #expect(lines.contains { $0.contains("Bearer <redacted>") })

            let text = try await h.admin(
                .POST, "/explain?from=10.1.2.3", body: "GET http://Acme/items\nX-Callout-Permission-Sets: Readers\n")
            #expect(text.status == 200)
            #expect(text.headers.first(name: "content-type")?.hasPrefix("text/plain") == true)
            #expect(text.body.contains("proxy_authentication_required"))
            #expect(h.idp.tokenRequestCount == 0)
            #expect(h.upstream.requestCount == 0)
        }
    }

    @Test func anAdminTokenIsRequiredWhenConfigured() async throws {
        let digest = SHA256.hash(data: Data("admin-secret-42".utf8)).map { String(format: "%02x", $0) }.joined()
        try await OpsHarness.with(config: {
            OpsHarness.config($0, proxySettings: "admin_token_sha256 = \"\(digest)\"")
        }) { h in
            #expect(try await h.admin(.GET, "/healthz").status == 200)
            let denied = try await h.admin(.GET, "/credentials")
            #expect(denied.status == 401)
            #expect(denied.json["code"] as? String == "admin_unauthorized")
            #expect(denied.headers.first(name: "www-authenticate") != nil)
            let wrong = try await h.admin(.GET, "/metrics", headers: [("Authorization", "Bearer admin-secret-43")])
            #expect(wrong.status == 401)
            let ok = try await h.admin(.GET, "/metrics", headers: [("Authorization", "Bearer admin-secret-42")])
            #expect(ok.status == 200)
            #expect(!h.logs.text.contains("admin-secret-42"))
        }
    }

    @Test func onlyLoopbackPeersWithoutAToken() {
        func decide(_ path: String, _ peer: String?, _ auth: String? = nil, _ token: [UInt8]? = nil)
            -> AdminAccess.Decision
        {
            AdminAccess.decide(path: path, peer: peer, authorization: auth, tokenSHA256: token)
        }
        #expect(decide("/metrics", "127.0.0.1") == .allow)
        #expect(decide("/metrics", "127.9.9.9") == .allow)
        #expect(decide("/metrics", "::1") == .allow)
        #expect(decide("/metrics", "10.0.0.1") == .forbidden)
        #expect(decide("/healthz", "192.168.1.1") == .forbidden)
        #expect(decide("/metrics", nil) == .forbidden)
        let token = Array(SHA256.hash(data: Data("t0ken".utf8)))
        #expect(decide("/healthz", "10.0.0.1", nil, token) == .allow)
        #expect(decide("/metrics", "10.0.0.1", nil, token) == .unauthorized)
        #expect(decide("/metrics", "10.0.0.1", "Bearer t0ken", token) == .allow)
        #expect(decide("/metrics", "127.0.0.1", "bearer t0ken", token) == .allow)
        #expect(decide("/metrics", "127.0.0.1", "Basic t0ken", token) == .unauthorized)
    }
}
