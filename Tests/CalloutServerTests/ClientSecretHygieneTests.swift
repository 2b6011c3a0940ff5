import CalloutCore
import CalloutDevTools
import CalloutServer
import CalloutTokens
import Foundation
import Testing

/// Client secrets never leave: a scenario with the Basic and form-body flows at TRACE level,
/// including an identity provider that echoes the secret in its error, then every log line,
/// problem body, admin answer and the metrics are searched for it.
@Suite(.serialized) struct ClientSecretHygieneTests {
    @Test func noClientSecretInAnyOutput() async throws {
        let basicSecret = "basic+secret/\(UUID().uuidString)"
        let postSecret = "post secret&\(UUID().uuidString)"
        try await OpsHarness.with(config: { env in
            env.identityProvider.register(
                clientId: "basic-client", .init(grant: .clientCredentials, authentication: .basic(secret: basicSecret)))
            env.identityProvider.register(
                clientId: "post-client", .init(grant: .clientCredentials, authentication: .post(secret: postSecret)))
            let basicFile = AuthenticationFlowEndToEndTests.secretFile(env, "basic.secret", basicSecret)
            let postFile = AuthenticationFlowEndToEndTests.secretFile(env, "post.secret", postSecret)
            return OpsHarness.config(
                env,
                extra: """
                    [[external_credential]]
                    name = "Basic_API"
                    authentication_flow = "client_credentials_client_secret"
                    identity_provider_url = "\(env.identityProvider.tokenEndpointURL)"

                      [[external_credential.principal]]
                      name = "Basic"
                      sequence_number = 1
                      client_id = "basic-client"
                      client_secret_file = "\(basicFile)"
                      permission_sets = ["Readers"]

                    [[external_credential]]
                    name = "Post_API"
                    authentication_flow = "client_credentials_client_secret"
                    client_authentication = "post"
                    identity_provider_url = "\(env.identityProvider.tokenEndpointURL)"

                      [[external_credential.principal]]
                      name = "Post"
                      sequence_number = 1
                      client_id = "post-client"
                      client_secret_file = "\(postFile)"
                      permission_sets = ["Readers"]

                    [[named_credential]]
                    name = "BasicApi"
                    url = "\(env.upstream.baseURL)/v1"
                    external_credential = "Basic_API"

                    [[named_credential]]
                    name = "PostApi"
                    url = "\(env.upstream.baseURL)/v1"
                    external_credential = "Post_API"
                    """)
        }) { h in
            #expect(try await h.callout("/callout:BasicApi/a").status == 200)
            #expect(try await h.callout("/callout:PostApi/a").status == 200)
            // Refresh after a 401, admin refresh, reload.
            h.upstream.setBehavior(.statusSequence([401]))
            #expect(try await h.callout("/callout:PostApi/b").status == 200)
            h.upstream.setBehavior(.echo)
            _ = try await h.admin(.POST, "/tokens/refresh?external_credential=Basic_API")
            _ = try await h.admin(.POST, "/reload")
            // Wrong secrets, and an identity provider that quotes the secret in its error.
            h.idp.register(
                clientId: "basic-client", .init(grant: .clientCredentials, authentication: .basic(secret: "other")))
            _ = try await h.admin(.DELETE, "/tokens")
            #expect(try await h.callout("/callout:BasicApi/c").status == 502)
            h.idp.setFault(
                .oauthErrorDescribed(
                    status: 401, error: "invalid_client",
                    description: "client_secret \(postSecret) is wrong; basic \(basicSecret)"))
            _ = try await h.admin(.DELETE, "/tokens")
            #expect(try await h.callout("/callout:PostApi/d").status == 502)
            #expect(try await h.callout("/callout:BasicApi/d").status == 502)
            h.idp.setFault(.none)
            // Every admin endpoint.
            _ = try await h.admin(.GET, "/readyz")
            _ = try await h.admin(.GET, "/credentials")
            _ = try await h.admin(.POST, "/explain", body: "GET http://PostApi/x\nX-Callout-Permission-Sets: Readers")
            _ = try await h.admin(.GET, "/metrics")
            _ = try await h.admin(.POST, "/tokens/refresh?external_credential=Post_API")

            #expect(h.idp.requests.contains { $0.authorization?.hasPrefix("Basic ") == true })
            #expect(h.idp.requests.contains { $0.value("client_secret") == postSecret })
            var secrets = [basicSecret, postSecret]
            for (id, secret) in [("basic-client", basicSecret), ("post-client", postSecret)] {
                secrets.append(FormURLEncoding.encode(secret))
                let pair = FormURLEncoding.encode(id) + ":" + FormURLEncoding.encode(secret)
                secrets.append(Data(pair.utf8).base64EncodedString())
            }
            secrets += h.idp.requests.compactMap(\.authorization)
            let output = h.logs.text + "\n" + h.transcript.text
            #expect(output.contains("Basic_API"))
            #expect(output.contains("token exchange"))
            for secret in secrets {
                #expect(!output.contains(secret), "a client secret leaked (\(secret.count) characters)")
            }
        }
    }
}
