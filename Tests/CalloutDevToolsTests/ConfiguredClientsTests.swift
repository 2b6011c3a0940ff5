import CalloutCore
import CalloutDevTools
import CalloutTokens
import Foundation
import Testing

/// A configuration with two external credentials whose keys live in a temporary folder.
private struct ConfiguredFixture {
    static let idpURL = "https://127.0.0.1:9443/oauth2/token"
    static let strictAudience = "https://strict.example/audience"
    static let now: Int64 = 1_800_000_000

    let clients: ConfiguredClients
    let acme: SigningMaterial
    let strict: SigningMaterial

    static func make() throws -> ConfiguredFixture {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("configured-clients-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try DevelopmentPKI.generateSigningIdentity(commonName: "acme").write(to: directory, baseName: "acme")
        try DevelopmentPKI.generateSigningIdentity(commonName: "strict").write(to: directory, baseName: "strict")
        let text = """
            [[certificate]]
            name = "Acme_Signing"
            private_key_file = "acme-key.pem"
            certificate_file = "acme.pem"

            [[certificate]]
            name = "Strict_Signing"
            private_key_file = "strict-key.pem"
            certificate_file = "strict.pem"

            [[external_credential]]
            name = "Acme_API"
            identity_provider_url = "\(idpURL)"
            signing_certificate = "Acme_Signing"

              [[external_credential.principal]]
              name = "Admin"
              sequence_number = 1
              client_id = "acme-admin"
              permission_sets = ["Acme_Admins"]

              [[external_credential.principal]]
              name = "Reader"
              sequence_number = 2
              client_id = "acme-reader"
              permission_sets = ["Acme_Readers"]

            [[external_credential]]
            name = "Strict_API"
            identity_provider_url = "https://idp.strict.example/token"
            signing_certificate = "Strict_Signing"
            signing_algorithm = "RS512"

              [external_credential.jwt_claims]
              aud = "\(strictAudience)"

              [[external_credential.principal]]
              name = "Reader"
              sequence_number = 1
              client_id = "strict-reader"
              permission_sets = ["Strict_Readers"]

            [[named_credential]]
            name = "Acme"
            url = "https://api.acme.example/v2"
            external_credential = "Acme_API"

            [[named_credential]]
            name = "Strict"
            url = "https://api.strict.example"
            external_credential = "Strict_API"
            """
        let config = try ConfigLoader.load(text: text, file: "test.conf", baseDirectory: directory.path)
        let materials = try CredentialMaterials.load(config, environment: [:])
        return ConfiguredFixture(
            clients: try ConfiguredClients(config: config, materials: materials),
            acme: try #require(materials.signingMaterial("Acme_Signing")),
            strict: try #require(materials.signingMaterial("strict_signing")))
    }

    func assertion(
        clientId: String = "acme-admin", audience: String = idpURL, algorithm: SigningAlgorithm = .rs256,
        now: Int64 = now, jti: String = UUID().uuidString, with material: SigningMaterial? = nil
    ) throws -> String {
        try JWTAssertion.sign(
            AssertionRequest(clientId: clientId, audience: audience, algorithm: algorithm, now: now, jti: jti),
            with: material ?? acme)
    }
}

/// The rejection reason, or nil when the assertion was accepted.
private func rejection(_ result: Result<Void, DevelopmentIdentityProvider.AssertionRejection>) -> String? {
    if case .failure(let rejection) = result { return rejection.reason }
    return nil
}

@Suite struct ConfiguredClientsTests {
    private let verifyAt: @Sendable () -> Int64 = { ConfiguredFixture.now + 5 }

    @Test func registersEveryPrincipal() throws {
        let fixture = try ConfiguredFixture.make()
        #expect(fixture.clients.clientIds == ["acme-admin", "acme-reader", "strict-reader"])
        let strict = try #require(fixture.clients.clients.first { $0.clientId == "strict-reader" })
        #expect(strict.algorithm == .rs512)
        #expect(strict.audience == ConfiguredFixture.strictAudience)
        #expect(strict.externalCredential == "Strict_API")
        let admin = try #require(fixture.clients.clients.first { $0.clientId == "acme-admin" })
        #expect(admin.audience == ConfiguredFixture.idpURL && admin.algorithm == .rs256)
        #expect(admin.key.derRepresentation == fixture.acme.key.publicKeyDER)
    }

    @Test func acceptsAGoodAssertionOnce() throws {
        let fixture = try ConfiguredFixture.make()
        let verify = fixture.clients.verifier(now: verifyAt)
        let assertion = try fixture.assertion()
        #expect(throws: Never.self) { try verify("acme-admin", assertion, "ignored").get() }
        let reader = try fixture.assertion(clientId: "acme-reader")
        #expect(throws: Never.self) { try verify("acme-reader", reader, "ignored").get() }
        // Replayed jti.
        let replay = rejection(verify("acme-admin", assertion, "ignored"))
        #expect(replay == AssertionVerificationError.replayed.description)
    }

    @Test func rejectsWrongKeyAudienceTimeAndClient() throws {
        let fixture = try ConfiguredFixture.make()
        let verify = fixture.clients.verifier(now: verifyAt)
        func reason(_ clientId: String, _ assertion: String) -> String? {
            if case .failure(let rejection) = verify(clientId, assertion, ConfiguredFixture.idpURL) {
                #expect(!rejection.reason.contains(assertion))
                return rejection.reason
            }
            return nil
        }
        let wrongKey = try fixture.assertion(with: fixture.strict)
        #expect(reason("acme-admin", wrongKey) == AssertionVerificationError.badSignature.description)
        let wrongAudience = try fixture.assertion(audience: "https://elsewhere.example/token")
        #expect(reason("acme-admin", wrongAudience) == AssertionVerificationError.audienceMismatch.description)
        let expired = try fixture.assertion(now: ConfiguredFixture.now - 1_000)
        #expect(reason("acme-admin", expired) == AssertionVerificationError.expired.description)
        let otherClient = try fixture.assertion(clientId: "acme-reader")
        #expect(reason("acme-admin", otherClient) == AssertionVerificationError.issuerMismatch.description)
        #expect(reason("nobody", try fixture.assertion(clientId: "nobody")) == "unknown client")
        #expect(reason("acme-admin", "not.a.jwt")?.hasPrefix("malformed assertion") == true)
    }

    @Test func rs512CredentialRefusesRS256AndUsesTheConstantAudience() throws {
        let fixture = try ConfiguredFixture.make()
        let verify = fixture.clients.verifier(now: verifyAt)
        let rs256 = try fixture.assertion(
            clientId: "strict-reader", audience: ConfiguredFixture.strictAudience, with: fixture.strict)
        #expect(
            rejection(verify("strict-reader", rs256, "ignored"))
                == AssertionVerificationError.algorithmNotAllowed("RS256").description)
        let good = try fixture.assertion(
            clientId: "strict-reader", audience: ConfiguredFixture.strictAudience, algorithm: .rs512,
            with: fixture.strict)
        #expect(throws: Never.self) { try verify("strict-reader", good, "ignored").get() }
        let idpAudience = try fixture.assertion(
            clientId: "strict-reader", audience: "https://idp.strict.example/token", algorithm: .rs512,
            with: fixture.strict)
        #expect(
            rejection(verify("strict-reader", idpAudience, "ignored"))
                == AssertionVerificationError.audienceMismatch.description)
    }

    @Test func plainListWithoutAudienceUsesTheProvidersURL() throws {
        let identity = try DevelopmentPKI.generateSigningIdentity(keyType: .ec, commonName: "plain")
        let material = try SigningMaterial.load(
            privateKeyPEM: identity.privateKeyPEM, certificatePEM: identity.certificatePEM, passphrase: nil)
        let clients = ConfiguredClients([
            (clientId: "plain", key: material.key.verificationKey, algorithm: .es256, audience: nil)
        ])
        let verify = clients.verifier(now: verifyAt)
        let assertion = try JWTAssertion.sign(
            AssertionRequest(
                clientId: "plain", audience: "https://127.0.0.1:1234/oauth2/token", algorithm: .es256,
                now: ConfiguredFixture.now),
            with: material)
        #expect(
            rejection(verify("plain", assertion, "https://127.0.0.1:9999/oauth2/token"))
                == AssertionVerificationError.audienceMismatch.description)
        #expect(throws: Never.self) {
            try verify("plain", assertion, "https://127.0.0.1:1234/oauth2/token").get()
        }
    }
}
