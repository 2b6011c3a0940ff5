import CalloutCore
import CalloutDevTools
import CalloutServer
import CalloutTokens
import Foundation
import NIOConcurrencyHelpers
import Testing

@Suite(.serialized) struct ReloadTests {
    /// The standard configuration with the external credential's X-Tenant header set to `tenant`.
    static func config(_ env: LocalEnvironment, tenant: String, proxySettings: String = "", scope: String? = nil)
        -> String
    {
        var text = OpsHarness.config(env, proxySettings: proxySettings).replacingOccurrences(
            of: "value = \"acme\"", with: "value = \"\(tenant)\"")
        if let scope {
            text = text.replacingOccurrences(
                of: #"scope = '{!"session:role:" + $User.Department}'"#, with: "scope = \"\(scope)\"")
        }
        return text
    }

    @Test func reloadUnderLoadFailsNothingAndTakesEffect() async throws {
        try await OpsHarness.with(config: { Self.config($0, tenant: "acme-1") }) { h in
            #expect(try await h.callout("/callout:Acme/warm").echoed("X-Tenant") == "acme-1")
            let tokensBefore = h.idp.tokenRequestCount
            let failures = NIOLockedValueBox<[String]>([])
            let seen = NIOLockedValueBox<Set<String>>([])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for loop in 0..<4 {
                    group.addTask {
                        for i in 0..<60 {
                            do {
                                let r = try await h.callout("/callout:Acme/load/\(loop)/\(i)")
                                if r.status != 200 {
                                    failures.withLockedValue { $0.append("\(r.status) \(r.body)") }
                                }
                                if let tenant = r.echoed("X-Tenant") { _ = seen.withLockedValue { $0.insert(tenant) } }
                            } catch {
                                failures.withLockedValue { $0.append("\(error)") }
                            }
                        }
                    }
                }
                group.addTask {
                    // Reload while the loops run.
                    while h.upstream.requestCount < 40 { try await Task.sleep(for: .milliseconds(5)) }
                    try h.rewrite(Self.config(h.env, tenant: "acme-2"))
                    let reload = try await h.admin(.POST, "/reload")
                    #expect(reload.status == 200, "\(reload.body)")
                    #expect(reload.json["generation"] as? Int == 2)
                    #expect((reload.json["dropped_tokens"] as? [Any])?.isEmpty == true)
                }
                try await group.waitForAll()
            }
            #expect(failures.withLockedValue { $0 }.isEmpty, "\(failures.withLockedValue { $0 }.prefix(3))")
            #expect(seen.withLockedValue { $0 }.contains("acme-2"))
            #expect(try await h.callout("/callout:Acme/after").echoed("X-Tenant") == "acme-2")
            // A custom header is not token-relevant: the cached token was kept.
            #expect(h.idp.tokenRequestCount == tokensBefore)
            #expect(try await h.metric("callout_config_reloads_total", ["outcome": "success"]) == 1)
            #expect(try await h.metric("callout_config_generation") == 2)
        }
    }

    @Test func aTokenRelevantChangeDropsThatCredentialsTokens() async throws {
        try await OpsHarness.with(config: { Self.config($0, tenant: "acme", scope: "read") }) { h in
            #expect(try await h.callout("/callout:Acme/a").status == 200)
            #expect(h.idp.requests.last?.scope == "read")
            try h.rewrite(Self.config(h.env, tenant: "acme", scope: "read write"))
            let reload = try await h.admin(.POST, "/reload")
            #expect(reload.status == 200)
            let dropped = reload.json["dropped_tokens"] as? [[String: Any]] ?? []
            #expect(dropped.first?["external_credential"] as? String == "Acme_API")
            #expect(dropped.first?["entries"] as? Int == 1)
            #expect(try await h.callout("/callout:Acme/b").status == 200)
            #expect(h.idp.requests.last?.scope == "read write")
            #expect(h.idp.tokenRequestCount == 2)
        }
    }

    @Test func anInvalidFileKeepsTheOldConfigurationServing() async throws {
        try await OpsHarness.with(config: { Self.config($0, tenant: "old") }) { h in
            #expect(try await h.callout("/callout:Acme/a").echoed("X-Tenant") == "old")
            try h.rewrite(
                Self.config(h.env, tenant: "new").replacingOccurrences(
                    of: "sequence_number = 5", with: "sequence_number = \"five\""))
            let reload = try await h.admin(.POST, "/reload")
            #expect(reload.status == 422)
            #expect(reload.headers.first(name: "content-type") == "application/problem+json")
            #expect(reload.json["code"] as? String == "reload_failed")
            #expect(reload.json["generation"] as? Int == 1)
            let issues = reload.json["issues"] as? [[String: Any]] ?? []
            #expect(!issues.isEmpty)
            #expect(issues.contains { ($0["key_path"] as? String)?.contains("sequence_number") == true })
            #expect(h.logs.text.contains("configuration not reloaded"))
            #expect(try await h.callout("/callout:Acme/b").echoed("X-Tenant") == "old")

            // A key file that is gone is refused too.
            try h.rewrite(
                Self.config(h.env, tenant: "new").replacingOccurrences(
                    of: h.env.signingKeyFile, with: h.env.signingKeyFile + ".missing"))
            let missingKey = try await h.admin(.POST, "/reload")
            #expect(missingKey.status == 422)
            #expect(missingKey.body.contains("private_key_file"))
            #expect(try await h.callout("/callout:Acme/c").echoed("X-Tenant") == "old")
            #expect(try await h.metric("callout_config_reloads_total", ["outcome": "failure"]) == 2)
        }
    }

    @Test func theListenAddressCannotChangeOnReload() async throws {
        try await OpsHarness.with(config: { Self.config($0, tenant: "a") }) { h in
            let text = Self.config(h.env, tenant: "b", proxySettings: "idle_timeout_seconds = 30")
                .replacingOccurrences(of: "listen = \"127.0.0.1:0\"", with: "listen = \"127.0.0.1:1\"")
            try h.rewrite(text)
            let reload = try await h.admin(.POST, "/reload")
            #expect(reload.status == 200)
            let warnings = reload.json["warnings"] as? [String] ?? []
            #expect(warnings.contains { $0.hasPrefix("proxy.listen cannot change on reload") })
            #expect(warnings.contains { $0.contains("idle_timeout_seconds") })
            #expect(try await h.callout("/callout:Acme/a").echoed("X-Tenant") == "b")
            #expect(h.service.runtime.current.config.proxy.listen.port == 0)
        }
    }

    @Test func keyRotationAndTokenRelevantSettingsAreDetected() throws {
        let base = try ConfigLoader.load(
            text: """
                [proxy]
                listen = "127.0.0.1:0"
                admin_listen = "off"
                [[certificate]]
                name = "Signing"
                private_key_file = "k.pem"
                [[external_credential]]
                name = "A"
                identity_provider_url = "https://idp.example/token"
                signing_certificate = "Signing"
                  [[external_credential.principal]]
                  name = "P"
                  sequence_number = 1
                  client_id = "p"
                  permission_sets = ["S"]
                  [[external_credential.custom_header]]
                  name = "X-Tenant"
                  value = "t"
                [[external_credential]]
                name = "B"
                identity_provider_url = "https://idp.example/token"
                signing_certificate = "Signing"
                  [[external_credential.principal]]
                  name = "P"
                  sequence_number = 1
                  client_id = "p"
                  permission_sets = ["S"]
                """)
        let key1 = try SigningKey(
            pem: try DevelopmentPKI.generateSigningIdentity(keyType: .rsa, commonName: "one").privateKeyPEM)
        let key2 = try SigningKey(
            pem: try DevelopmentPKI.generateSigningIdentity(keyType: .rsa, commonName: "two").privateKeyPEM)
        let m1 = CredentialMaterials(signing: ["signing": try SigningMaterial(key: key1)])
        let m2 = CredentialMaterials(signing: ["signing": try SigningMaterial(key: key2)])
        func drop(_ edit: (inout ProxyConfig) -> Void, materials: CredentialMaterials? = nil) -> [String] {
            var changed = base
            edit(&changed)
            return TokenRelevantChanges.credentialsToDrop(
                old: base, oldMaterials: m1, new: changed, newMaterials: materials ?? m1)
        }
        #expect(drop { _ in } == [])
        #expect(drop({ _ in }, materials: m2) == ["A", "B"])
        #expect(drop { $0.externalCredentials[0].customHeaders = [] } == [])
        #expect(drop { $0.externalCredentials[0].additionalRefreshStatusCodes = [403] } == [])
        #expect(drop { $0.externalCredentials[0].identityProviderURL = URL(string: "https://other/token")! } == ["A"])
        #expect(drop { $0.externalCredentials[1].signingAlgorithm = .rs512 } == ["B"])
        #expect(drop { $0.externalCredentials[0].jwtExpirationSeconds = 60 } == ["A"])
        #expect(drop { $0.externalCredentials[0].principals[0].clientId = "q" } == ["A"])
        #expect(drop { $0.externalCredentials[0].principals[0].permissionSets = ["T"] } == [])
        #expect(drop { $0.externalCredentials[0].scope = try? Formula(parsing: "x") } == ["A"])
        #expect(
            drop { $0.externalCredentials[0].jwtClaims = [(name: "aud", value: try! Formula(parsing: "x"))] } == ["A"])
        #expect(
            drop { $0.externalCredentials[0].jwtHeader = [(name: "kid", value: try! Formula(parsing: "k"))] } == ["A"])
        #expect(drop { $0.externalCredentials.removeLast() } == ["B"])
    }
}
