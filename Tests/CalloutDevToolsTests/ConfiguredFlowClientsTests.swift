import CalloutCore
import CalloutDevTools
import CalloutTokens
import Foundation
import NIOSSL
import Testing

/// `dev-idp` registers the principals of every flow from a configuration: the client secret (for
/// Basic or the form body, as configured), the TLS client certificate, or the JWT bearer key.
@Suite struct ConfiguredFlowClientsTests {
    @Test func everyFlowIsRegisteredWithWhatItMustPresent() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("configured-flows-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try DevelopmentPKI.generateSigningIdentity(commonName: "acme").write(to: directory, baseName: "acme")
        let text = """
            [[certificate]]
            name = "Acme_Signing"
            private_key_file = "acme-key.pem"
            certificate_file = "acme.pem"

            [[external_credential]]
            name = "Basic_API"
            authentication_flow = "client_credentials_client_secret"
            identity_provider_url = "https://127.0.0.1:9443/oauth2/token"

              [[external_credential.principal]]
              name = "Basic"
              sequence_number = 1
              client_id = "basic-client"
              client_secret_env = "BASIC_SECRET"
              permission_sets = ["A"]

            [[external_credential]]
            name = "Mtls_API"
            authentication_flow = "client_credentials_client_secret"
            client_authentication = "tls_client_auth"
            identity_provider_issuer = "https://127.0.0.1:9443"
            identity_provider_client_certificate = "Acme_Signing"

              [[external_credential.principal]]
              name = "Mtls"
              sequence_number = 1
              client_id = "mtls-client"
              permission_sets = ["A"]

            [[external_credential]]
            name = "Bearer_API"
            authentication_flow = "jwt_bearer"
            client_authentication = "post"
            identity_provider_url = "https://127.0.0.1:9443/oauth2/token"
            signing_certificate = "Acme_Signing"

              [[external_credential.principal]]
              name = "Bearer"
              sequence_number = 1
              client_id = "bearer-client"
              client_secret_env = "BEARER_SECRET"
              permission_sets = ["A"]
            """
        let config = try ConfigLoader.load(text: text, file: "flows.conf", baseDirectory: directory.path)
        let materials = try CredentialMaterials.load(
            config, environment: ["BASIC_SECRET": "basic-value", "BEARER_SECRET": "bearer-value"])
        let clients = try ConfiguredClients(config: config, materials: materials)
        #expect(clients.clients.isEmpty)
        #expect(Set(clients.registrations.keys) == ["basic-client", "mtls-client", "bearer-client"])
        #expect(clients.registrations["basic-client"]?.authentication == .basic(secret: "basic-value"))
        let certificate = try #require(materials.tlsIdentity("Acme_Signing")?.certificateChain.first)
        let der = try certificate.toDERBytes()
        #expect(clients.registrations["mtls-client"]?.authentication == .tlsCertificate(der: der))
        let bearer = try #require(clients.registrations["bearer-client"])
        #expect(bearer.authentication == .post(secret: "bearer-value"))
        guard case .jwtBearer(_, let algorithm, let audience, _) = bearer.grant else {
            Issue.record("expected the JWT bearer grant")
            return
        }
        #expect(algorithm == .rs256)
        #expect(audience == "https://127.0.0.1:9443/oauth2/token")
    }
}
