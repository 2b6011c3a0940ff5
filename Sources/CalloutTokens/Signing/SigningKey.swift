import CalloutCore
import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import _CryptoExtras

/// A private key that can sign JWT client assertions: RSA (2048 bits or more) or EC P-256.
///
/// Loads PEM in these forms:
/// - `BEGIN RSA PRIVATE KEY` (PKCS#1)
/// - `BEGIN PRIVATE KEY` (PKCS#8, RSA or EC P-256)
/// - `BEGIN EC PRIVATE KEY` (SEC1, P-256)
/// - `BEGIN ENCRYPTED PRIVATE KEY` (encrypted PKCS#8, as `openssl genpkey -aes256` writes it)
/// - legacy OpenSSL-encrypted PEM (`Proc-Type: 4,ENCRYPTED` with `DEK-Info`, as
///   `openssl rsa -aes256 -traditional` writes it)
///
/// Encrypted keys are decrypted by BoringSSL through NIOSSL's `NIOSSLPrivateKey`; the DER it
/// gives back is read by swift-crypto like an unencrypted key.
///
/// Other PEM blocks in the same text (such as `EC PARAMETERS`) are skipped. Errors are
/// `KeyLoadError` and never carry key material.
public struct SigningKey: Sendable {
    enum Backing: Sendable {
        case rsa(_RSA.Signing.PrivateKey)
        case p256(P256.Signing.PrivateKey)
    }

    let backing: Backing

    /// Loads a private key from PEM text. `passphrase` is needed only for an encrypted key
    /// and ignored otherwise.
    public init(pem: String, passphrase: String? = nil) throws {
        if pem.contains("Proc-Type: 4,ENCRYPTED") {
            // RFC 1421 headers, which PEMDocument does not read: the whole text goes to BoringSSL.
            guard let passphrase else { throw KeyLoadError.passphraseRequired }
            self.backing = try Self.decrypt(pem: pem, passphrase: passphrase)
            return
        }
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: pem)
        } catch {
            throw KeyLoadError.notPEM
        }
        let accepted = ["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"]
        guard let document = documents.first(where: { accepted.contains($0.discriminator) }) else {
            if let other = documents.first(where: { $0.discriminator != "EC PARAMETERS" }) ?? documents.first {
                throw KeyLoadError.unsupportedFormat(label: other.discriminator)
            }
            throw KeyLoadError.notPEM
        }
        switch document.discriminator {
        case "RSA PRIVATE KEY":
            self.backing = try Self.rsa(der: document.derBytes, format: "PKCS#1 RSA")
        case "EC PRIVATE KEY":
            self.backing = try Self.sec1(der: document.derBytes)
        case "PRIVATE KEY":
            self.backing = try Self.pkcs8(der: document.derBytes)
        default:
            guard let passphrase else { throw KeyLoadError.passphraseRequired }
            self.backing = try Self.decrypt(pem: document.pemString, passphrase: passphrase)
        }
    }

    init(backing: Backing) { self.backing = backing }

    /// RSA or EC P-256.
    public var keyType: SigningAlgorithm.KeyType {
        switch backing {
        case .rsa: .rsa
        case .p256: .ec
        }
    }

    /// The RSA modulus size in bits, or `nil` for an EC key.
    public var rsaModulusBits: Int? {
        if case .rsa(let key) = backing { key.keySizeInBits } else { nil }
    }

    /// The public key as DER `SubjectPublicKeyInfo`.
    public var publicKeyDER: [UInt8] { publicKey.derRepresentation }

    /// The public key as PEM (`BEGIN PUBLIC KEY`, SubjectPublicKeyInfo).
    public var publicKeyPEM: String { publicKey.pemRepresentation }

    /// The public half.
    public var publicKey: PublicKey {
        switch backing {
        case .rsa(let key): .rsa(key.publicKey)
        case .p256(let key): .p256(key.publicKey)
        }
    }

    /// Whether this key can sign with `algorithm` (RS256/RS512/PS256 need RSA, ES256 needs P-256).
    public func canSign(_ algorithm: SigningAlgorithm) -> Bool {
        algorithm.keyType == keyType
    }

    /// Throws `KeyLoadError.algorithmKeyMismatch` unless `canSign(algorithm)`.
    public func requireCanSign(_ algorithm: SigningAlgorithm) throws {
        guard canSign(algorithm) else {
            throw KeyLoadError.algorithmKeyMismatch(algorithm: algorithm, keyType: keyType)
        }
    }

    /// Signs `message` as JWS `algorithm` and returns the JWS signature bytes:
    /// RS256/RS512 are RSASSA-PKCS1-v1_5 over SHA-256/SHA-512, PS256 is RSASSA-PSS with
    /// SHA-256 (MGF1-SHA-256, 32-byte salt), ES256 is ECDSA P-256 as raw r||s (64 bytes).
    public func sign(_ message: some DataProtocol, algorithm: SigningAlgorithm) throws -> [UInt8] {
        try requireCanSign(algorithm)
        switch (backing, algorithm) {
        case (.rsa(let key), .rs256):
            return [UInt8](
                try key.signature(for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5).rawRepresentation)
        case (.rsa(let key), .rs512):
            return [UInt8](
                try key.signature(for: SHA512.hash(data: message), padding: .insecurePKCS1v1_5).rawRepresentation)
        case (.rsa(let key), .ps256):
            return [UInt8](try key.signature(for: SHA256.hash(data: message), padding: .PSS).rawRepresentation)
        case (.p256(let key), .es256):
            return [UInt8](try key.signature(for: SHA256.hash(data: message)).rawRepresentation)
        default:
            throw KeyLoadError.algorithmKeyMismatch(algorithm: algorithm, keyType: keyType)
        }
    }

    // MARK: - Parsing

    private static let rsaEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 1, 1]
    private static let ecPublicKey: ASN1ObjectIdentifier = [1, 2, 840, 10045, 2, 1]
    private static let prime256v1: ASN1ObjectIdentifier = [1, 2, 840, 10045, 3, 1, 7]

    private static func rsa(der: [UInt8], format: String) throws -> Backing {
        let key: _RSA.Signing.PrivateKey
        do {
            key = try _RSA.Signing.PrivateKey(unsafeDERRepresentation: der)
        } catch {
            // Keys below 1024 bits fail here too; report what we can tell without the key.
            throw KeyLoadError.malformedKey(format: format)
        }
        guard key.keySizeInBits >= 2048 else { throw KeyLoadError.weakRSAKey(bits: key.keySizeInBits) }
        return .rsa(key)
    }

    private static func p256(der: [UInt8], format: String) throws -> Backing {
        do {
            return .p256(try P256.Signing.PrivateKey(derRepresentation: der))
        } catch {
            throw KeyLoadError.malformedKey(format: format)
        }
    }

    /// PKCS#8 `PrivateKeyInfo`: dispatch on the algorithm OID (and the curve for EC).
    private static func pkcs8(der: [UInt8]) throws -> Backing {
        var algorithm: ASN1ObjectIdentifier?
        var curve: ASN1ObjectIdentifier?
        do {
            try DER.sequence(try DER.parse(der), identifier: .sequence) { nodes in
                _ = try Int(derEncoded: &nodes)
                guard let identifier = nodes.next() else { throw KeyLoadError.malformedKey(format: "PKCS#8") }
                // AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }
                let (oid, parameters) = try DER.sequence(identifier, identifier: .sequence) { inner in
                    (try ASN1ObjectIdentifier(derEncoded: &inner), inner.next())
                }
                algorithm = oid
                if oid == ecPublicKey, let parameters {
                    curve = try ASN1ObjectIdentifier(derEncoded: parameters)
                }
                while nodes.next() != nil {}
            }
        } catch {
            throw KeyLoadError.malformedKey(format: "PKCS#8")
        }
        switch algorithm {
        case rsaEncryption:
            return try rsa(der: der, format: "PKCS#8 RSA")
        case ecPublicKey:
            guard curve == prime256v1 else {
                throw KeyLoadError.unsupportedKeyAlgorithm("EC curve \(curve.map { "\($0)" } ?? "unspecified")")
            }
            return try p256(der: der, format: "PKCS#8 EC")
        default:
            throw KeyLoadError.unsupportedKeyAlgorithm(algorithm.map { "OID \($0)" } ?? "unknown")
        }
    }

    /// Decrypts an encrypted key with BoringSSL (NIOSSL) and reads the DER it writes back:
    /// PKCS#1 for RSA, SEC1 for EC. Errors never carry the key or the passphrase.
    private static func decrypt(pem: String, passphrase: String) throws -> Backing {
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: Array(pem.utf8), format: .pem) {
                (setPassphrase: NIOSSLPassphraseSetter<[UInt8]>) in
                setPassphrase(Array(passphrase.utf8))
            }
        } catch {
            // BoringSSL reports a wrong passphrase and a damaged key alike.
            throw KeyLoadError.wrongPassphrase
        }
        let der: [UInt8]
        do {
            der = try key.derBytes
        } catch {
            throw KeyLoadError.malformedKey(format: "encrypted")
        }
        do {
            return try sec1(der: der)
        } catch KeyLoadError.malformedKey {
            return try rsa(der: der, format: "encrypted RSA")
        }
    }

    /// SEC1 `ECPrivateKey`: check the curve when named, then let swift-crypto parse it.
    private static func sec1(der: [UInt8]) throws -> Backing {
        var curve: ASN1ObjectIdentifier?
        do {
            try DER.sequence(try DER.parse(der), identifier: .sequence) { nodes in
                _ = try Int(derEncoded: &nodes)
                _ = try ASN1OctetString(derEncoded: &nodes)
                while let node = nodes.next() {
                    if node.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
                        curve = try DER.explicitlyTagged(node, tagNumber: 0, tagClass: .contextSpecific) {
                            try ASN1ObjectIdentifier(derEncoded: $0)
                        }
                    }
                }
            }
        } catch {
            throw KeyLoadError.malformedKey(format: "SEC1 EC")
        }
        if let curve, curve != prime256v1 {
            throw KeyLoadError.unsupportedKeyAlgorithm("EC curve \(curve)")
        }
        return try p256(der: der, format: "SEC1 EC")
    }
}
