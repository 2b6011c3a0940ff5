import CalloutCore
import CalloutTestSupport
import Crypto
import Foundation
import Testing
import _CryptoExtras

@testable import CalloutTokens

@Suite("Key loading")
struct KeyLoadingTests {
    @Test func loadsRSAFromPKCS1AndPKCS8() throws {
        let rsa = SigningTestSupport.rsaKey
        #expect(rsa.pemRepresentation.contains("BEGIN RSA PRIVATE KEY"))
        #expect(rsa.pkcs8PEMRepresentation.contains("BEGIN PRIVATE KEY"))
        let pkcs1 = try SigningKey(pem: rsa.pemRepresentation)
        let pkcs8 = try SigningKey(pem: rsa.pkcs8PEMRepresentation)
        for key in [pkcs1, pkcs8] {
            #expect(key.keyType == .rsa)
            #expect(key.rsaModulusBits == 2048)
            #expect(key.publicKeyDER == [UInt8](rsa.publicKey.derRepresentation))
            #expect(key.publicKeyPEM == rsa.publicKey.pemRepresentation)
            #expect(key.canSign(.rs256) && key.canSign(.rs512) && key.canSign(.ps256))
            #expect(!key.canSign(.es256))
        }
    }

    @Test func loadsP256FromPKCS8AndSEC1() throws {
        let p256 = SigningTestSupport.p256Key
        let sec1PEM =
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
            + sec1DER(p256).pemBlock(label: "EC PRIVATE KEY")
        for pem in [p256.pemRepresentation, sec1PEM] {
            let key = try SigningKey(pem: pem)
            #expect(key.keyType == .ec)
            #expect(key.rsaModulusBits == nil)
            #expect(key.publicKeyDER == [UInt8](p256.publicKey.derRepresentation))
            #expect(key.canSign(.es256))
            #expect(!key.canSign(.rs256))
        }
    }

    @Test func decryptsCommittedEncryptedPKCS8Fixture() throws {
        let key = try SigningKey(
            pem: EncryptedKeyFixture.testOnlyEncryptedP256PKCS8PEM, passphrase: EncryptedKeyFixture.testOnlyPassphrase)
        #expect(key.keyType == .ec)
        let expected = try P256.Signing.PublicKey(pemRepresentation: EncryptedKeyFixture.testOnlyPublicKeyPEM)
        #expect(key.publicKeyDER == [UInt8](expected.derRepresentation))
    }

    @Test func encryptedFixtureWithWrongOrMissingPassphraseFails() throws {
        #expect(throws: KeyLoadError.wrongPassphrase) {
            try SigningKey(pem: EncryptedKeyFixture.testOnlyEncryptedP256PKCS8PEM, passphrase: "not-the-passphrase")
        }
        #expect(throws: KeyLoadError.passphraseRequired) {
            try SigningKey(pem: EncryptedKeyFixture.testOnlyEncryptedP256PKCS8PEM)
        }
    }

    @Test(
        "openssl-encrypted RSA and EC keys load",
        .enabled(if: SigningTestSupport.opensslPath != nil, "openssl is not installed on this machine"))
    func opensslEncryptedKeys() throws {
        let directory = try SigningTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let passphrase = "correct horse battery staple"

        let rsaPath = directory.appendingPathComponent("rsa.pem").path
        try SigningTestSupport.openssl([
            "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-aes-256-cbc",
            "-pass", "pass:\(passphrase)", "-out", rsaPath,
        ])
        let rsaPEM = try String(contentsOfFile: rsaPath, encoding: .utf8)
        #expect(rsaPEM.contains("BEGIN ENCRYPTED PRIVATE KEY"))
        let rsa = try SigningKey(pem: rsaPEM, passphrase: passphrase)
        #expect(rsa.keyType == .rsa)
        #expect(rsa.rsaModulusBits == 2048)
        let rsaPublic = try SigningTestSupport.openssl([
            "pkey", "-in", rsaPath, "-passin", "pass:\(passphrase)", "-pubout",
        ])
        #expect(try rsa.publicKeyDER == [UInt8](_RSA.Signing.PublicKey(pemRepresentation: rsaPublic).derRepresentation))
        #expect(throws: KeyLoadError.wrongPassphrase) { try SigningKey(pem: rsaPEM, passphrase: "wrong") }

        // EC re-encrypted with AES-128 and the PBKDF2 default PRF spelled out as HMAC-SHA1.
        let ecPlain = directory.appendingPathComponent("ec-plain.pem").path
        let ecPath = directory.appendingPathComponent("ec.pem").path
        try SigningTestSupport.openssl([
            "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", ecPlain,
        ])
        try SigningTestSupport.openssl([
            "pkcs8", "-topk8", "-in", ecPlain, "-v2", "aes128", "-v2prf", "hmacWithSHA1",
            "-passout", "pass:\(passphrase)", "-out", ecPath,
        ])
        let ec = try SigningKey(pem: try String(contentsOfFile: ecPath, encoding: .utf8), passphrase: passphrase)
        #expect(ec.keyType == .ec)
        #expect(
            ec.publicKeyDER == (try SigningKey(pem: try String(contentsOfFile: ecPlain, encoding: .utf8))).publicKeyDER)
    }

    @Test func weakRSAKeyIsRefused() throws {
        let weak = try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: 1024))
        #expect(throws: KeyLoadError.weakRSAKey(bits: 1024)) { try SigningKey(pem: weak.pemRepresentation) }
        #expect(throws: KeyLoadError.weakRSAKey(bits: 1024)) { try SigningKey(pem: weak.pkcs8PEMRepresentation) }
        #expect(KeyLoadError.weakRSAKey(bits: 1024).description.contains("too weak to sign"))
    }

    @Test func ecKeyCannotSignRS256() throws {
        let material = try SigningTestSupport.material(SigningTestSupport.p256Key.pemRepresentation)
        #expect(throws: KeyLoadError.algorithmKeyMismatch(algorithm: .rs256, keyType: .ec)) {
            try JWTAssertion.sign(SigningTestSupport.request(.rs256), with: material)
        }
        let rsaMaterial = try SigningTestSupport.material(SigningTestSupport.rsaKey.pemRepresentation)
        #expect(throws: KeyLoadError.algorithmKeyMismatch(algorithm: .es256, keyType: .rsa)) {
            try rsaMaterial.requireCanSign(.es256)
        }
    }

    @Test func unsupportedInputsAreNamed() throws {
        #expect(throws: KeyLoadError.notPEM) { try SigningKey(pem: "not a key") }
        let publicPEM = SigningTestSupport.rsaKey.publicKey.pemRepresentation
        #expect(throws: KeyLoadError.unsupportedFormat(label: "PUBLIC KEY")) { try SigningKey(pem: publicPEM) }
        let legacy = """
            -----BEGIN RSA PRIVATE KEY-----
            Proc-Type: 4,ENCRYPTED
            DEK-Info: AES-256-CBC,00000000000000000000000000000000

            AAAA
            -----END RSA PRIVATE KEY-----
            """
        #expect(throws: KeyLoadError.legacyEncryptedPEM) { try SigningKey(pem: legacy) }
        let p384 = P384.Signing.PrivateKey().pemRepresentation
        #expect(throws: KeyLoadError.self) { try SigningKey(pem: p384) }
        let garbage = [UInt8](repeating: 0x30, count: 40).pemBlock(label: "PRIVATE KEY")
        #expect(throws: KeyLoadError.malformedKey(format: "PKCS#8")) { try SigningKey(pem: garbage) }
    }

    @Test func errorDescriptionsNeverContainKeyMaterial() throws {
        let weak = try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: 1024))
        let inputs: [(pem: String, passphrase: String?)] = [
            (weak.pemRepresentation, nil),
            (EncryptedKeyFixture.testOnlyEncryptedP256PKCS8PEM, "wrong"),
            (EncryptedKeyFixture.testOnlyEncryptedP256PKCS8PEM, nil),
            (P384.Signing.PrivateKey().pemRepresentation, nil),
            (SigningTestSupport.rsaKey.publicKey.pemRepresentation, nil),
            (String(SigningTestSupport.rsaKey.pemRepresentation.dropLast(40)), nil),
        ]
        for input in inputs {
            do {
                _ = try SigningKey(pem: input.pem, passphrase: input.passphrase)
                Issue.record("expected a failure")
            } catch {
                let text = "\(error) \(String(reflecting: error)) \(error.localizedDescription)"
                for line in SigningTestSupport.pemBodyLines(input.pem) { #expect(!text.contains(line)) }
                if let passphrase = input.passphrase { #expect(!text.contains(passphrase)) }
                #expect(!text.contains("BEGIN"))
            }
        }
    }

    @Test func filesAndEnvironment() throws {
        let directory = try SigningTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let keyFile = directory.appendingPathComponent("key.pem").path
        try EncryptedKeyFixture.testOnlyEncryptedP256PKCS8PEM.write(toFile: keyFile, atomically: true, encoding: .utf8)

        let material = try SigningMaterial.load(
            privateKeyFile: keyFile, certificateFile: nil, passphraseEnvironmentVariable: "SIGNING_PASS",
            environment: ["SIGNING_PASS": EncryptedKeyFixture.testOnlyPassphrase])
        #expect(material.key.keyType == .ec)

        #expect(throws: KeyLoadError.passphraseVariableNotSet(name: "SIGNING_PASS")) {
            try SigningMaterial.load(
                privateKeyFile: keyFile, certificateFile: nil, passphraseEnvironmentVariable: "SIGNING_PASS",
                environment: [:])
        }
        let missing = directory.appendingPathComponent("missing.pem").path
        do {
            _ = try SigningMaterial.load(
                privateKeyFile: missing, certificateFile: nil, passphraseEnvironmentVariable: nil, environment: [:])
            Issue.record("expected a failure")
        } catch let error as KeyLoadError {
            #expect(error == .fileUnreadable(path: missing, reason: "no such file"))
            #expect(error.description.contains(missing))
        }
    }
}

/// SEC1 `ECPrivateKey` DER for a P-256 key (what `openssl ecparam -genkey` writes).
func sec1DER(_ key: P256.Signing.PrivateKey) -> [UInt8] {
    var der: [UInt8] = [0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20] + key.rawRepresentation
    der += [0xA0, 0x0A, 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]
    der += [0xA1, 0x44, 0x03, 0x42, 0x00] + key.publicKey.x963Representation
    return der
}

extension Sequence<UInt8> {
    /// Wraps DER bytes as a PEM block with 64-column lines.
    func pemBlock(label: String) -> String {
        let base64 = Data(self).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return "-----BEGIN \(label)-----\n\(base64)\n-----END \(label)-----\n"
    }
}
