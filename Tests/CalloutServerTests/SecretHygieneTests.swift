import CalloutCore
import CalloutServer
import Crypto
import Foundation
import Testing

@Suite(.serialized) struct SecretHygieneTests {
    /// A full scenario at TRACE level; then no token, assertion, client secret or key line may
    /// appear in the logs, problem bodies, admin answers or metrics.
    @Test func noSecretInAnyOutput() async throws {
        let callerSecret = "caller-secret-\(UUID().uuidString)"
        let adminSecret = "admin-secret-\(UUID().uuidString)"
        // Query strings carry secrets in some APIs: the access line keeps the path only.
        let querySecret = "query-secret-\(UUID().uuidString)"
        func hex(_ s: String) -> String { SHA256.hash(data: Data(s.utf8)).map { String(format: "%02x", $0) }.joined() }
        let extra = """
            [[caller]]
            name = "billing"
            token_sha256 = "\(hex(callerSecret))"
            permission_sets = ["Readers"]

            [[caller]]
            name = "billing_basic"
            token_sha256 = "\(hex("billing:\(callerSecret)"))"
            permission_sets = ["Readers"]
            """
        try await OpsHarness.with(config: {
            OpsHarness.config(
                $0, proxySettings: "admin_token_sha256 = \"\(hex(adminSecret))\"\ntrusted_callers = [\"10.9.0.0/16\"]",
                extra: extra)
        }) { h in
            let auth = [("Authorization", "Bearer \(adminSecret)")]
            let caller = [("Proxy-Authorization", "Bearer \(callerSecret)")]
            let basic = [("Proxy-Authorization", "Basic " + Data("billing:\(callerSecret)".utf8).base64EncodedString())]
            // Callouts: success, refresh after 401, refusals, a wrong secret, an IdP failure.
            #expect(try await h.callout("/callout:Acme/a?api_key=\(querySecret)", headers: caller).status == 200)
            h.upstream.setBehavior(.statusSequence([401]))
            #expect(try await h.callout("/callout:Acme/b", headers: caller).status == 200)
            h.upstream.setBehavior(.unauthorizedForever)
            #expect(try await h.callout("/callout:Acme/c", headers: basic).status == 401)
            h.upstream.setBehavior(.echo)
            #expect(
                try await h.callout("/callout:Acme/d", headers: [("Proxy-Authorization", "Bearer wrong")]).status == 407
            )
            #expect(try await h.callout("/callout:Nope/e?key=\(querySecret)", headers: caller).status == 404)
            h.idp.setFault(.oauthError(status: 400, error: "invalid_client"))
            _ = try await h.admin(.DELETE, "/tokens", headers: auth)
            #expect(try await h.callout("/callout:Acme/f", headers: caller).status == 502)
            h.idp.setFault(.none)
            // Every admin endpoint.
            _ = try await h.admin(.GET, "/healthz")
            _ = try await h.admin(.GET, "/readyz")
            _ = try await h.admin(.GET, "/credentials")
            _ = try await h.admin(.GET, "/credentials", headers: auth)
            _ = try await h.admin(.POST, "/tokens/refresh?external_credential=Acme_API", headers: auth)
            #expect(try await h.callout("/callout:Acme/g", headers: caller).status == 200)
            _ = try await h.admin(.GET, "/credentials", headers: auth)
            _ = try await h.admin(
                .POST, "/explain", body: "GET http://Acme/x\nProxy-Authorization: Bearer wrong", headers: auth)
            _ = try await h.admin(.POST, "/reload", headers: auth)
            try h.rewrite("not toml [")
            _ = try await h.admin(.POST, "/reload", headers: auth)
            _ = try await h.admin(.GET, "/metrics", headers: auth)

            // What must never appear.
            var secrets: [String] = [callerSecret, adminSecret, querySecret]
            let tokens = Set(
                h.upstream.requests.compactMap(\.authorization).filter { $0.hasPrefix("Bearer ") }.map {
                    String($0.dropFirst(7))
                })
            #expect(tokens.count >= 2)
            secrets += tokens
            let assertions = h.idp.requests.compactMap(\.assertion)
            #expect(assertions.count >= 3)
            for a in assertions {
                secrets.append(a)
                // The signature alone, too.
                if let signature = a.split(separator: ".").last { secrets.append(String(signature)) }
            }
            let keyLines = try String(contentsOfFile: h.env.signingKeyFile, encoding: .utf8)
                .split(separator: "\n").filter { !$0.hasPrefix("-----") && $0.count >= 16 }.map(String.init)
            #expect(keyLines.count > 10)
            secrets += keyLines

            let output = h.logs.text + "\n" + h.transcript.text
            #expect(output.contains("callout"))
            // The access line's own fields were written, without their secrets.
            #expect(output.contains(#""path":"/callout:Acme/a","#))
            #expect(output.contains(#""caller":"billing""#))
            #expect(output.contains(#""peer":"127.0.0.1""#))
            for secret in secrets {
                #expect(!output.contains(secret), "a secret leaked (\(secret.count) characters)")
            }
        }
    }
}
