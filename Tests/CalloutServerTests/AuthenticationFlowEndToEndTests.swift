import CalloutCore
import CalloutDevTools
import CalloutServer
import CalloutTokens
import Foundation
import NIOSSL
import Testing

/// Callouts through the real server with each flow besides the client assertion: client secret
/// (Basic and form body), TLS client certificate, JWT bearer grant, and a token endpoint
/// discovered from issuer metadata. The development identity provider checks each.
@Suite struct AuthenticationFlowEndToEndTests {
    static let readers = [("X-Callout-Permission-Sets", "Readers")]

    /// A secret file beside the generated keys, readable by its owner only.
    static func secretFile(_ env: LocalEnvironment, _ name: String, _ value: String) -> String {
        let path = env.directory.appendingPathComponent(name).path
        try? value.write(toFile: path, atomically: true, encoding: .utf8)
        try? FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        return path
    }

    /// One external credential `Reports_API` (keys in `settings`, one principal with
    /// `principal` keys) behind the named credential `Reports`.
    static func reports(_ env: LocalEnvironment, settings: String, principal: String = "") -> String {
        OpsHarness.config(
            env,
            extra: """
                [[external_credential]]
                name = "Reports_API"
                \(settings)

                  [[external_credential.principal]]
                  name = "Reporting"
                  sequence_number = 1
                  client_id = "reporting-client"
                  permission_sets = ["Readers"]
                  \(principal)

                [[named_credential]]
                name = "Reports"
                url = "\(env.upstream.baseURL)/v1"
                external_credential = "Reports_API"
                """)
    }

    static func bearer(_ response: ProxyHarness.Response) -> Bool {
        response.echoed("Authorization")?.hasPrefix("Bearer dev.") == true
    }

    @Test func clientSecretBasic() async throws {
        let secret = "basic:secret/\(UUID().uuidString)"
        try await OpsHarness.with(config: { env in
            env.identityProvider.register(
                clientId: "reporting-client", .init(grant: .clientCredentials, authentication: .basic(secret: secret)))
            return Self.reports(
                env,
                settings: """
                    authentication_flow = "client_credentials_client_secret"
                    client_authentication = "basic"
                    identity_provider_url = "\(env.identityProvider.tokenEndpointURL)"
                    """,
                principal: "client_secret_file = \"\(Self.secretFile(env, "reporting.secret", secret + "\n"))\"")
        }) { h in
            let first = try await h.callout("/callout:Reports/items")
            #expect(first.status == 200, "\(first.body)")
            #expect(Self.bearer(first))
            let request = try #require(h.idp.requests.last)
            #expect(request.authorization?.hasPrefix("Basic ") == true)
            #expect(request.value("client_secret") == nil)
            #expect(request.value("client_assertion") == nil)
            #expect(request.grantType == "client_credentials")
            // Cached: no second exchange.
            #expect(try await h.callout("/callout:Reports/items").status == 200)
            #expect(h.idp.tokenRequestCount == 1)
            // The identity provider checks the method: a client registered for the form body is refused.
            h.idp.register(
                clientId: "reporting-client", .init(grant: .clientCredentials, authentication: .post(secret: secret)))
            _ = try await h.admin(.DELETE, "/tokens")
            let refused = try await h.callout("/callout:Reports/items")
            #expect(refused.status == 502)
            #expect(refused.body.contains("token_exchange_failed"))
            #expect(refused.body.contains("client_secret_post"))
        }
    }

    @Test func clientSecretPostAndASecretRotatedOnReload() async throws {
        let secret = "post-secret-\(UUID().uuidString)"
        let rotated = "rotated-secret-\(UUID().uuidString)"
        try await OpsHarness.with(config: { env in
            env.identityProvider.register(
                clientId: "reporting-client", .init(grant: .clientCredentials, authentication: .post(secret: secret)))
            return Self.reports(
                env,
                settings: """
                    authentication_flow = "client_credentials_client_secret"
                    client_authentication = "post"
                    identity_provider_url = "\(env.identityProvider.tokenEndpointURL)"
                    scope = "reports:read"
                    """,
                principal: "client_secret_file = \"\(Self.secretFile(env, "reporting.secret", secret))\"")
        }) { h in
            let first = try await h.callout("/callout:Reports/items")
            #expect(first.status == 200, "\(first.body)")
            let credentials = try await h.admin(.GET, "/credentials")
            #expect(
                credentials.body.contains(#""client_secret_from" : "file:\#(h.env.directory.path)/reporting.secret""#))
            #expect(credentials.body.contains(#""client_authentication" : "post""#))
            let request = try #require(h.idp.requests.last)
            #expect(request.authorization == nil)
            #expect(request.value("client_id") == "reporting-client")
            #expect(request.value("client_secret") == secret)
            #expect(request.scope == "reports:read")
            // The identity provider now wants the rotated secret; the file changes and a reload reads it.
            h.idp.register(
                clientId: "reporting-client", .init(grant: .clientCredentials, authentication: .post(secret: rotated)))
            _ = Self.secretFile(h.env, "reporting.secret", rotated)
            let reload = try await h.admin(.POST, "/reload")
            #expect(reload.status == 200, "\(reload.body)")
            #expect(reload.body.contains("Reports_API"))
            let after = try await h.callout("/callout:Reports/items")
            #expect(after.status == 200, "\(after.body)")
            #expect(h.idp.requests.last?.value("client_secret") == rotated)
        }
    }

    @Test func jwtBearerGrant() async throws {
        try await OpsHarness.with(config: { env in
            env.identityProvider.register(
                clientId: "reporting-client",
                .init(
                    grant: .jwtBearer(
                        key: env.signingKey.verificationKey, algorithm: .rs256, audience: nil, maxLifetimeSeconds: 300),
                    authentication: .none))
            return Self.reports(
                env,
                settings: """
                    authentication_flow = "jwt_bearer"
                    identity_provider_url = "\(env.identityProvider.tokenEndpointURL)"
                    signing_certificate = "Local_Signing"

                      [external_credential.jwt_claims]
                      sub = '{!$User.Username}'
                    """)
        }) { h in
            let alice = try await h.callout(
                "/callout:Reports/items", headers: Self.readers + [("X-Callout-User-Username", "alice@example.com")])
            #expect(alice.status == 200, "\(alice.body)")
            #expect(Self.bearer(alice))
            let request = try #require(h.idp.requests.last)
            #expect(request.grantType == "urn:ietf:params:oauth:grant-type:jwt-bearer")
            #expect(request.value("assertion") != nil)
            #expect(request.value("client_assertion") == nil)
            #expect(request.authorization == nil)
            #expect(request.claims["sub"] == "alice@example.com")
            #expect(request.claims["iss"] == "reporting-client")
            // Another user is another grant and another token.
            let bob = try await h.callout(
                "/callout:Reports/items", headers: Self.readers + [("X-Callout-User-Username", "bob@example.com")])
            #expect(bob.status == 200)
            #expect(h.idp.requests.last?.claims["sub"] == "bob@example.com")
            #expect(bob.echoed("Authorization") != alice.echoed("Authorization"))
        }
    }

    @Test func tlsClientAuth() async throws {
        try await OpsHarness.with(config: { env in
            let der = (try? NIOSSLCertificate.fromPEMFile(env.signingCertificateFile).first?.toDERBytes()) ?? []
            env.identityProvider.register(
                clientId: "reporting-client",
                .init(grant: .clientCredentials, authentication: .tlsCertificate(der: der)))
            return Self.reports(
                env,
                settings: """
                    authentication_flow = "client_credentials_client_secret"
                    client_authentication = "tls_client_auth"
                    identity_provider_url = "\(env.identityProvider.tokenEndpointURL)"
                    identity_provider_client_certificate = "Local_Signing"
                    """)
        }) { h in
            let response = try await h.callout("/callout:Reports/items")
            #expect(response.status == 200, "\(response.body)")
            let request = try #require(h.idp.requests.last)
            let der = try NIOSSLCertificate.fromPEMFile(h.env.signingCertificateFile).first?.toDERBytes()
            #expect(request.clientCertificateDER == der)
            #expect(request.value("client_id") == "reporting-client")
            #expect(request.value("client_secret") == nil)
            #expect(request.authorization == nil)
            // Another certificate registered: the identity provider refuses this one.
            h.idp.register(
                clientId: "reporting-client",
                .init(grant: .clientCredentials, authentication: .tlsCertificate(der: [1, 2])))
            _ = try await h.admin(.DELETE, "/tokens")
            let refused = try await h.callout("/callout:Reports/items")
            #expect(refused.status == 502)
            #expect(refused.body.contains("client certificate does not match"))
        }
    }

    @Test func tokenEndpointDiscoveredFromTheIssuer() async throws {
        try await OpsHarness.with(config: { env in
            OpsHarness.config(env).replacingOccurrences(
                of: "identity_provider_url = \"\(env.identityProvider.tokenEndpointURL)\"",
                with: "identity_provider_issuer = \"\(env.identityProvider.baseURL)\"")
        }) { h in
            let response = try await h.callout("/callout:Acme/items")
            #expect(response.status == 200, "\(response.body)")
            #expect(h.idp.metadataRequestCount >= 1)
            // The assertion's audience is the discovered token endpoint (the provider checked it).
            #expect(h.idp.requests.last?.claims["aud"] == h.idp.tokenEndpointURL)
            let credentials = try await h.admin(.GET, "/credentials")
            #expect(credentials.body.contains(#""identity_provider_issuer" : "\#(h.idp.baseURL)""#))
            // A reload fetches the metadata again.
            let before = h.idp.metadataRequestCount
            #expect(try await h.admin(.POST, "/reload").status == 200)
            for _ in 0..<100 where h.idp.metadataRequestCount == before { try await Task.sleep(for: .milliseconds(20)) }
            #expect(h.idp.metadataRequestCount > before)
        }
    }

    @Test func aFailedDiscoveryFailsOnlyItsCredentialAndIsRetried() async throws {
        try await OpsHarness.with(
            clientIds: ["acme-reader", "acme-admin", "reporting-client"],
            config: { env in
                env.identityProvider.setFault(.metadataIssuer("https://impostor.example"))
                return Self.reports(
                    env,
                    settings: """
                        identity_provider_issuer = "\(env.identityProvider.baseURL)"
                        signing_certificate = "Local_Signing"
                        """)
            }
        ) { h in
            let failed = try await h.callout("/callout:Reports/items")
            #expect(failed.status == 502, "\(failed.body)")
            #expect(failed.body.contains("token_endpoint_discovery_failed"))
            #expect(failed.body.contains("impostor.example"))
            #expect(failed.headers.first(name: "Retry-After") != nil)
            // Other credentials keep working; /readyz says why this one does not.
            #expect(try await h.callout("/callout:Acme/items").status == 200)
            let ready = try await h.admin(.GET, "/readyz")
            #expect(ready.status == 200)
            #expect(ready.body.contains("token_endpoint_discovery_failed"))
            #expect(ready.body.contains("Reports_API"))
            // Fixed at the provider: the scheduled retry finds the endpoint without a reload.
            h.idp.setFault(.none)
            var status = 0
            for _ in 0..<60 {
                try await Task.sleep(for: .milliseconds(250))
                status = try await h.callout("/callout:Reports/items").status
                if status == 200 { break }
            }
            #expect(status == 200)
            #expect(!(try await h.admin(.GET, "/readyz").body.contains("token_endpoint_discovery_failed")))
        }
    }

    @Test func secretFilesAreWatchedLikeKeys() throws {
        let config = try ConfigLoader.load(
            text: """
                [[external_credential]]
                name = "Reports_API"
                authentication_flow = "client_credentials_client_secret"
                identity_provider_url = "https://idp.example/token"

                  [[external_credential.principal]]
                  name = "Reporting"
                  sequence_number = 1
                  client_id = "reporting-client"
                  client_secret_file = "secrets/reporting"
                  permission_sets = ["Readers"]
                """, file: "/etc/proxy/proxy.conf", baseDirectory: "/etc/proxy")
        #expect(
            WatchedFiles.paths(configFile: "/etc/proxy/proxy.conf", config: config) == [
                "/etc/proxy/proxy.conf", "/etc/proxy/secrets/reporting",
            ])
    }

    @Test func aReloadDropsTokensWhenFlowAuthenticationIssuerOrSecretChange() throws {
        let principal = PrincipalConfig(
            name: "P", sequenceNumber: 1, clientId: "p", permissionSets: ["S"],
            clientSecret: ClientSecretSource(.environment("S"), keyPath: "k"))
        var credential = ExternalCredentialConfig(
            name: "A", identityProviderURL: URL(string: "https://idp.example/token")!, signingCertificate: "",
            principals: [principal])
        credential.flow = .clientCredentialsClientSecret
        credential.clientAuthentication = .basic
        let base = ProxyConfig(externalCredentials: [credential])
        func materials(_ secret: String) -> CredentialMaterials {
            CredentialMaterials(clientSecrets: [("A", "P", ClientSecret(secret))])
        }
        func drop(_ edit: (inout ExternalCredentialConfig) -> Void, secret: String = "one") -> [String] {
            var changed = base
            edit(&changed.externalCredentials[0])
            return TokenRelevantChanges.credentialsToDrop(
                old: base, oldMaterials: materials("one"), new: changed, newMaterials: materials(secret))
        }
        #expect(drop { _ in } == [])
        #expect(drop({ _ in }, secret: "two") == ["A"])
        #expect(drop { $0.clientAuthentication = .post } == ["A"])
        #expect(drop { $0.flow = .jwtBearer } == ["A"])
        #expect(drop { $0.identityProviderIssuer = URL(string: "https://idp.example")! } == ["A"])
    }

    @Test func aJWTBearerGrantForAnotherAudienceIsRefusedByTheProvider() async throws {
        try await OpsHarness.with(config: { env in
            env.identityProvider.register(
                clientId: "reporting-client",
                .init(
                    grant: .jwtBearer(
                        key: env.signingKey.verificationKey, algorithm: .rs256,
                        audience: "https://login.salesforce.com", maxLifetimeSeconds: 300),
                    authentication: .none))
            return Self.reports(
                env,
                settings: """
                    authentication_flow = "jwt_bearer"
                    identity_provider_url = "\(env.identityProvider.tokenEndpointURL)"
                    signing_certificate = "Local_Signing"
                    """)
        }) { h in
            let refused = try await h.callout("/callout:Reports/items")
            #expect(refused.status == 502)
            #expect(refused.body.contains("invalid_grant"), "\(refused.body)")
            // With the audience the provider expects, the same grant is accepted.
            try h.rewrite(
                Self.reports(
                    h.env,
                    settings: """
                        authentication_flow = "jwt_bearer"
                        identity_provider_url = "\(h.idp.tokenEndpointURL)"
                        signing_certificate = "Local_Signing"

                          [external_credential.jwt_claims]
                          aud = "https://login.salesforce.com"
                        """))
            #expect(try await h.admin(.POST, "/reload").status == 200)
            let accepted = try await h.callout("/callout:Reports/items")
            #expect(accepted.status == 200, "\(accepted.body)")
            #expect(h.idp.requests.last?.claims["aud"] == "https://login.salesforce.com")
        }
    }
}
