import Crypto
import Foundation
import SwiftASN1
import X509

/// The certificate authority of the development PKI. Kept in a folder (`dev-idp --ca-dir`), it
/// outlives restarts, so a configuration whose `ca_file` trusts it keeps loading; each start
/// issues a fresh server certificate from it.
public struct DevelopmentCA: Sendable {
    public let certificate: Certificate
    let key: P256.Signing.PrivateKey

    /// File names in a CA folder.
    public enum FileName {
        public static let certificate = DevelopmentPKI.FileName.caCertificate
        public static let privateKey = "ca-key.pem"
    }

    /// A new self-signed EC P-256 CA, valid from an hour before `now` for `validity` seconds.
    public static func generate(validity: TimeInterval, now: Date = Date()) throws -> DevelopmentCA {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("callout-proxy development")
            CommonName("callout-proxy development CA")
        }
        let publicKey = Certificate.PublicKey(key.publicKey)
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(validity),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: publicKey)
            },
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
        return DevelopmentCA(certificate: certificate, key: key)
    }

    /// The CA kept in `directory` if it holds one that is valid at `now`, else a new one (valid
    /// `validity` seconds) written there: `ca.pem` (0644) and `ca-key.pem` (0600).
    /// `created` says which.
    public static func kept(
        in directory: URL, validity: TimeInterval = 365 * 24 * 3600, now: Date = Date()
    ) throws -> (authority: DevelopmentCA, created: Bool) {
        let certificateFile = directory.appendingPathComponent(FileName.certificate)
        let keyFile = directory.appendingPathComponent(FileName.privateKey)
        if let certificatePEM = try? String(contentsOf: certificateFile, encoding: .utf8),
            let keyPEM = try? String(contentsOf: keyFile, encoding: .utf8)
        {
            let certificate = try Certificate(pemEncoded: certificatePEM)
            let key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM)
            guard Certificate.PublicKey(key.publicKey) == certificate.publicKey else {
                throw DevelopmentCAError.keyMismatch(directory: directory.path)
            }
            if certificate.notValidAfter > now.addingTimeInterval(3600) {
                return (DevelopmentCA(certificate: certificate, key: key), false)
            }
        }
        let authority = try generate(validity: validity, now: now)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try PEMFileWriter.store(authority.key.pemRepresentation, to: keyFile, mode: 0o600)
        try PEMFileWriter.store(try authority.certificate.serializeAsPEM().pemString, to: certificateFile, mode: 0o644)
        return (authority, true)
    }
}

/// A CA folder that cannot be used.
public enum DevelopmentCAError: Error, Sendable, Equatable, CustomStringConvertible {
    case keyMismatch(directory: String)

    public var description: String {
        switch self {
        case .keyMismatch(let directory):
            "\(directory): ca-key.pem is not the key of ca.pem; remove both to make a new CA"
        }
    }
}
