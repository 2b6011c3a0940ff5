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

        // Legacy OpenSSL encryption (Proc-Type / DEK-Info headers), RSA and EC.
        for (command, plain) in [("rsa", rsaPath), ("ec", ecPlain)] {
            let legacyPath = directory.appendingPathComponent("legacy-\(command).pem").path
            var arguments = [command, "-in", plain, "-aes256", "-passout", "pass:\(passphrase)", "-out", legacyPath]
            if command == "rsa" { arguments += ["-passin", "pass:\(passphrase)", "-traditional"] }
            try SigningTestSupport.openssl(arguments)
            let legacyPEM = try String(contentsOfFile: legacyPath, encoding: .utf8)
            #expect(legacyPEM.contains("Proc-Type: 4,ENCRYPTED"))
            let key = try SigningKey(pem: legacyPEM, passphrase: passphrase)
            #expect(key.publicKeyDER == (command == "rsa" ? rsa.publicKeyDER : ec.publicKeyDER))
            #expect(throws: KeyLoadError.wrongPassphrase) { try SigningKey(pem: legacyPEM, passphrase: "wrong") }
        }
    }

    @Test func legacyEncryptedPEMLoads() throws {
        let passphrase = "legacy passphrase"
        let rsa = SigningTestSupport.rsaKey
        let p256 = SigningTestSupport.p256Key
        let cases: [(pem: String, publicKeyDER: [UInt8])] = [
            (
                try Self.legacyEncryptedPEM(
                    label: "RSA PRIVATE KEY", der: [UInt8](rsa.derRepresentation), passphrase: passphrase),
                [UInt8](rsa.publicKey.derRepresentation)
            ),
            (
                try Self.legacyEncryptedPEM(label: "EC PRIVATE KEY", der: sec1DER(p256), passphrase: passphrase),
                [UInt8](p256.publicKey.derRepresentation)
            ),
        ]
        for (pem, publicKeyDER) in cases {
            #expect(pem.contains("Proc-Type: 4,ENCRYPTED"))
            #expect(try SigningKey(pem: pem, passphrase: passphrase).publicKeyDER == publicKeyDER)
            #expect(throws: KeyLoadError.passphraseRequired) { try SigningKey(pem: pem) }
            do {
                _ = try SigningKey(pem: pem, passphrase: "not the passphrase")
                Issue.record("expected a failure")
            } catch {
                #expect(error as? KeyLoadError == .wrongPassphrase)
                let text = "\(error) \(String(reflecting: error)) \(error.localizedDescription)"
                #expect(!text.contains("not the passphrase") && !text.contains(passphrase))
                for line in SigningTestSupport.pemBodyLines(pem) { #expect(!text.contains(line)) }
            }
        }

        // A legacy key file without its passphrase variable is named like an encrypted PKCS#8 one.
        let directory = try SigningTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let keyFile = directory.appendingPathComponent("legacy.pem").path
        try cases[0].pem.write(toFile: keyFile, atomically: true, encoding: .utf8)
        #expect(throws: KeyLoadError.passphraseVariableNotSet(name: "SIGNING_PASS")) {
            try SigningMaterial.load(
                privateKeyFile: keyFile, certificateFile: nil, passphraseEnvironmentVariable: "SIGNING_PASS",
                environment: [:])
        }
    }

    /// What `openssl rsa -aes256 -traditional` writes: the DER encrypted with AES-256-CBC under
    /// `EVP_BytesToKey(MD5, salt = the IV's first 8 bytes, 1 round)`, headers naming cipher and IV.
    static func legacyEncryptedPEM(label: String, der: [UInt8], passphrase: String) throws -> String {
        let iv = (0..<16).map { _ in UInt8.random(in: 0...255) }
        let secret = Array(passphrase.utf8) + iv.prefix(8)
        let first = Array(Insecure.MD5.hash(data: secret))
        let second = Array(Insecure.MD5.hash(data: first + secret))
        let encrypted = try AES._CBC.encrypt(
            der, using: SymmetricKey(data: first + second), iv: AES._CBC.IV(ivBytes: iv))
        let body = Data(encrypted).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        let hex = iv.map { String($0, radix: 16, uppercase: true) }.map { $0.count == 1 ? "0" + $0 : $0 }.joined()
        return """
            -----BEGIN \(label)-----
            Proc-Type: 4,ENCRYPTED
            DEK-Info: AES-256-CBC,\(hex)

            \(body)
            -----END \(label)-----

            """
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
        #expect(throws: KeyLoadError.passphraseRequired) { try SigningKey(pem: legacy) }
        #expect(throws: KeyLoadError.wrongPassphrase) { try SigningKey(pem: legacy, passphrase: "any") }
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
