import CalloutCore
import CalloutTokens
import Crypto
import Foundation
import SwiftASN1
import _CryptoExtras

/// A public key that verifies JWS signatures: RSA or EC P-256.
public struct VerificationKey: Sendable {
    let backing: SigningKey.PublicKey

    /// Wraps a signing key's or a certificate's public key.
    public init(_ publicKey: SigningKey.PublicKey) { self.backing = publicKey }

    /// Loads a `BEGIN PUBLIC KEY` (SubjectPublicKeyInfo) or `BEGIN RSA PUBLIC KEY` PEM, or the
    /// public key of a `BEGIN CERTIFICATE` PEM.
    public init(pem: String) throws {
        let document: PEMDocument
        do {
            guard let first = try PEMDocument.parseMultiple(pemString: pem).first else { throw KeyLoadError.notPEM }
            document = first
        } catch {
            throw KeyLoadError.notPEM
        }
        switch document.discriminator {
        case "CERTIFICATE":
            self.backing = try CertificateInfo(pem: pem).publicKey
        case "PUBLIC KEY", "RSA PUBLIC KEY":
            if let rsa = try? _RSA.Signing.PublicKey(unsafeDERRepresentation: document.derBytes) {
                guard rsa.keySizeInBits >= 2048 else { throw KeyLoadError.weakRSAKey(bits: rsa.keySizeInBits) }
                self.backing = .rsa(rsa)
            } else if let p256 = try? P256.Signing.PublicKey(derRepresentation: document.derBytes) {
                self.backing = .p256(p256)
            } else {
                throw KeyLoadError.unsupportedKeyAlgorithm("public key is neither RSA nor EC P-256")
            }
        default:
            throw KeyLoadError.unsupportedFormat(label: document.discriminator)
        }
    }

    /// RSA or EC P-256.
    public var keyType: SigningAlgorithm.KeyType { backing.keyType }

    /// DER `SubjectPublicKeyInfo`.
    public var derRepresentation: [UInt8] { backing.derRepresentation }

    /// PEM `BEGIN PUBLIC KEY`.
    public var pemRepresentation: String { backing.pemRepresentation }

    /// Whether `signature` is a valid JWS `algorithm` signature over `message`. A key of the
    /// wrong type for the algorithm never verifies.
    public func isValidSignature(
        _ signature: some DataProtocol, for message: some DataProtocol, algorithm: SigningAlgorithm
    ) -> Bool {
        switch (backing, algorithm) {
        case (.rsa(let key), .rs256):
            let rsaSignature = _RSA.Signing.RSASignature(rawRepresentation: signature)
            return key.isValidSignature(rsaSignature, for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5)
        case (.rsa(let key), .rs512):
            let rsaSignature = _RSA.Signing.RSASignature(rawRepresentation: signature)
            return key.isValidSignature(rsaSignature, for: SHA512.hash(data: message), padding: .insecurePKCS1v1_5)
        case (.rsa(let key), .ps256):
            let rsaSignature = _RSA.Signing.RSASignature(rawRepresentation: signature)
            return key.isValidSignature(rsaSignature, for: SHA256.hash(data: message), padding: .PSS)
        case (.p256(let key), .es256):
            guard let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(ecdsa, for: SHA256.hash(data: message))
        default:
            return false
        }
    }

    /// Whether this is the public half of `signingKey`.
    public func matches(_ signingKey: SigningKey) -> Bool {
        derRepresentation == signingKey.publicKeyDER
    }
}

extension SigningKey {
    /// The public half, for verifying what this key signs.
    public var verificationKey: VerificationKey { VerificationKey(publicKey) }
}
