import CalloutCore
import CalloutDevTools
import Foundation
import Testing

/// `check` and `token` with the client-secret flow, through the binary: the secret's variable
/// is named when it is missing, a secret written in the file is refused without being repeated,
/// and a real exchange works.
@Suite(.serialized) struct AuthenticationFlowCommandTests {
    static func config(_ env: LocalEnvironment, principal: String) -> String {
        env.baseConfiguration()
            + """
            [[external_credential]]
            name = "Reports_API"
            authentication_flow = "client_credentials_client_secret"
            client_authentication = "basic"
            identity_provider_url = "\(env.identityProvider.tokenEndpointURL)"

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
            """
    }

    @Test func checkNamesTheVariableNeverTheSecretAndTokenExchanges() async throws {
        let secret = "cli-secret-\(UUID().uuidString)"
        let env = try await LocalEnvironment.start(
            clientIds: [],
            registrations: [
                "reporting-client": .init(grant: .clientCredentials, authentication: .basic(secret: secret))
            ])
        do {
            let path = env.directory.appendingPathComponent("proxy.conf").path
            try Self.config(env, principal: #"client_secret_env = "REPORTS_TEST_SECRET""#)
                .write(toFile: path, atomically: true, encoding: .utf8)

            let good = try runCLI(["check", "--config", path], environment: ["REPORTS_TEST_SECRET": secret])
            #expect(good.status == 0, "\(good.err)")
            #expect(good.out.contains("Reports_API (Reports_API): client credentials, client authentication basic"))
            #expect(!(good.out + good.err).contains(secret))

            let unset = try runCLI(["check", "--config", path])
            #expect(unset.status == 1)
            #expect(
                unset.err.contains(
                    "external_credential[0].principal[0].client_secret_env: environment variable REPORTS_TEST_SECRET is not set"
                ), "\(unset.err)")

            let token = try runCLI(
                ["token", "Reports_API", "--principal", "Reporting", "--config", path],
                environment: ["REPORTS_TEST_SECRET": secret])
            #expect(token.status == 0, "\(token.err)")
            #expect(token.out.contains("access token: dev."))
            #expect(!(token.out + token.err).contains(secret))
            #expect(env.identityProvider.requests.last?.authorization?.hasPrefix("Basic ") == true)

            let wrong = try runCLI(
                ["token", "Reports_API", "--principal", "Reporting", "--config", path],
                environment: ["REPORTS_TEST_SECRET": "not-the-secret-value"])
            #expect(wrong.status == 1)
            #expect(wrong.err.contains("invalid_client"), "\(wrong.err)")
            #expect(!(wrong.out + wrong.err).contains("not-the-secret-value"))

            let assertion = try runCLI(
                ["assertion", "Reports_API", "--principal", "Reporting", "--config", path],
                environment: ["REPORTS_TEST_SECRET": secret])
            #expect(assertion.status != 0)
            #expect(assertion.err.contains("signs no assertion"), "\(assertion.err)")

            try Self.config(env, principal: #"client_secret = "\#(secret)""#)
                .write(toFile: path, atomically: true, encoding: .utf8)
            let written = try runCLI(["check", "--config", path])
            #expect(written.status == 1)
            #expect(written.err.contains("client_secret: a secret is never written in the configuration file"))
            #expect(written.err.contains("client_secret_env") && written.err.contains("client_secret_file"))
            #expect(!(written.out + written.err).contains(secret))
        } catch {
            await env.shutdown()
            throw error
        }
        await env.shutdown()
    }
}
