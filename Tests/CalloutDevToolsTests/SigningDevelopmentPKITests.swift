import CalloutCore
import CalloutDevTools
import CalloutTestSupport
import Foundation
import NIOSSL
import Testing

@testable import CalloutTokens

@Suite("Development PKI")
struct SigningDevelopmentPKITests {
    @Test func generatesLoadableTLSMaterial() throws {
        let pki = try DevelopmentPKI.generate()
        #expect(pki.caCertificatePEM.hasPrefix("-----BEGIN CERTIFICATE-----"))
        let ca = try NIOSSLCertificate(bytes: Array(pki.caCertificatePEM.utf8), format: .pem)
        let leaf = try NIOSSLCertificate(bytes: Array(pki.leafCertificatePEM.utf8), format: .pem)
        _ = try NIOSSLPrivateKey(bytes: Array(pki.leafPrivateKeyPEM.utf8), format: .pem)
        #expect(ca != leaf)
        #expect(Array(leaf._subjectAlternativeNames()).count == 3)
        // The leaf key is the one certified.
        let key = try SigningKey(pem: pki.leafPrivateKeyPEM)
        #expect(try CertificateInfo(pem: pki.leafCertificatePEM).matches(key))
    }

    @Test(
        "leaf verifies against the CA with openssl",
        .enabled(if: SigningTestSupport.opensslPath != nil, "openssl is not installed on this machine"))
    func opensslVerifiesChainAndSANs() throws {
        let directory = try SigningTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let files = try DevelopmentPKI.generate().write(to: directory)
        let verify = try SigningTestSupport.openssl([
            "verify", "-CAfile", files.caCertificate.path, "-purpose", "sslserver", files.leafCertificate.path,
        ])
        #expect(verify.contains("OK"))
        let text = try SigningTestSupport.openssl(["x509", "-in", files.leafCertificate.path, "-noout", "-text"])
        #expect(text.contains("DNS:localhost"))
        #expect(text.contains("IP Address:127.0.0.1"))
        #expect(text.contains("IP Address:0:0:0:0:0:0:0:1"))
        let keyMode = try FileManager.default.attributesOfItem(atPath: files.leafPrivateKey.path)[.posixPermissions]
        #expect((keyMode as? NSNumber)?.intValue == 0o600)
        let certMode = try FileManager.default.attributesOfItem(atPath: files.caCertificate.path)[.posixPermissions]
        #expect((certMode as? NSNumber)?.intValue == 0o644)
    }

    @Test(arguments: [SigningAlgorithm.KeyType.rsa, .ec])
    func signingIdentityLoadsAndSigns(keyType: SigningAlgorithm.KeyType) throws {
        let identity = try DevelopmentPKI.generateSigningIdentity(keyType: keyType, commonName: "demo-client")
        #expect(identity.privateKeyPEM.contains("BEGIN PRIVATE KEY"))
        let material = try SigningMaterial.load(
            privateKeyPEM: identity.privateKeyPEM, certificatePEM: identity.certificatePEM, passphrase: nil)
        #expect(material.key.keyType == keyType)
        if keyType == .rsa { #expect(material.key.rsaModulusBits == 2048) }
        let algorithm: SigningAlgorithm = keyType == .rsa ? .rs256 : .es256
        let jwt = try JWTAssertion.sign(SigningTestSupport.request(algorithm), with: material)
        let verifier = AssertionVerifier(
            key: try VerificationKey(pem: identity.certificatePEM),
            expectedAudience: "https://idp.example.test/oauth2/token", expectedClientId: "client-123")
        #expect(throws: Never.self) { try verifier.verify(jwt, now: 1_700_000_000) }

        let directory = try SigningTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let files = try identity.write(to: directory, baseName: "demo")
        let mode = try FileManager.default.attributesOfItem(atPath: files.privateKey.path)[.posixPermissions]
        #expect((mode as? NSNumber)?.intValue == 0o600)
        let reloaded = try SigningMaterial.load(
            privateKeyFile: files.privateKey.path, certificateFile: files.certificate.path,
            passphraseEnvironmentVariable: nil, environment: [:])
        #expect(reloaded.key.publicKeyDER == material.key.publicKeyDER)
    }
}
