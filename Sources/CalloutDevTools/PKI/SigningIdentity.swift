import CalloutCore
import Crypto
import Foundation
import SwiftASN1
import X509
import _CryptoExtras

/// A fresh private key and a self-signed certificate for signing client assertions in demos
/// and tests: what an admin would upload to the identity provider.
public struct SigningIdentity: Sendable {
    /// PKCS#8 PEM (`BEGIN PRIVATE KEY`): RSA-2048 or EC P-256.
    public let privateKeyPEM: String
    /// Self-signed certificate PEM for the key.
    public let certificatePEM: String

    /// Generates a key of `keyType` (RSA-2048 or P-256) and a self-signed certificate with
    /// subject `CN=commonName`, valid from an hour before `now` for `validity` seconds.
    public static func generate(
        keyType: SigningAlgorithm.KeyType = .rsa,
        commonName: String,
        validity: TimeInterval = 365 * 24 * 3600,
        now: Date = Date()
    ) throws -> SigningIdentity {
        let privateKey: Certificate.PrivateKey
        let privateKeyPEM: String
        let signatureAlgorithm: Certificate.SignatureAlgorithm
        switch keyType {
        case .rsa:
            let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            privateKey = Certificate.PrivateKey(key)
            privateKeyPEM = key.pkcs8PEMRepresentation
            signatureAlgorithm = .sha256WithRSAEncryption
        case .ec:
            let key = P256.Signing.PrivateKey()
            privateKey = Certificate.PrivateKey(key)
            privateKeyPEM = key.pemRepresentation
            signatureAlgorithm = .ecdsaWithSHA256
        }
        let name = try DistinguishedName { CommonName(commonName) }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: privateKey.publicKey,
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(validity),
            issuer: name,
            subject: name,
            signatureAlgorithm: signatureAlgorithm,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                SubjectKeyIdentifier(hash: privateKey.publicKey)
            },
            issuerPrivateKey: privateKey
        )
        return SigningIdentity(
            privateKeyPEM: privateKeyPEM, certificatePEM: try certificate.serializeAsPEM().pemString)
    }

    /// Writes `<baseName>-key.pem` (0600) and `<baseName>.pem` (0644) into `directory`, creating
    /// it if needed. Returns the key and certificate URLs.
    @discardableResult
    public func write(to directory: URL, baseName: String = "signing") throws -> (privateKey: URL, certificate: URL) {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let key = directory.appendingPathComponent("\(baseName)-key.pem")
        let certificate = directory.appendingPathComponent("\(baseName).pem")
        try PEMFileWriter.store(privateKeyPEM, to: key, mode: 0o600)
        try PEMFileWriter.store(certificatePEM, to: certificate, mode: 0o644)
        return (key, certificate)
    }
}

extension DevelopmentPKI {
    /// A fresh signing key and self-signed certificate; see `SigningIdentity.generate`.
    public static func generateSigningIdentity(
        keyType: SigningAlgorithm.KeyType = .rsa, commonName: String, now: Date = Date()
    ) throws -> SigningIdentity {
        try SigningIdentity.generate(keyType: keyType, commonName: commonName, now: now)
    }
}
