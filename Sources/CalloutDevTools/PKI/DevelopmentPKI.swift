import Crypto
import Foundation
import SwiftASN1
import X509
import _CryptoExtras

#if canImport(Darwin)
    import Darwin
#elseif canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// An ephemeral certificate authority and a TLS server certificate for loopback, generated in
/// memory for demos and tests. Never use it in production.
public struct DevelopmentPKI: Sendable {
    /// The self-signed CA certificate (EC P-256), to trust in clients.
    public let caCertificatePEM: String
    /// The TLS leaf certificate signed by the CA, for `localhost`, `127.0.0.1` and `::1`
    /// (or the names given to `generate`).
    public let leafCertificatePEM: String
    /// The leaf's EC P-256 private key, PKCS#8 PEM.
    public let leafPrivateKeyPEM: String

    /// File names used by `write(to:)`.
    public enum FileName {
        public static let caCertificate = "ca.pem"
        public static let leafCertificate = "server.pem"
        public static let leafPrivateKey = "server-key.pem"
    }

    /// Generates a leaf, and a fresh CA unless `authority` is given. Certificates are valid from
    /// an hour before `now` for `validity` seconds.
    public static func generate(
        dnsNames: [String] = ["localhost"],
        ipAddresses: [String] = ["127.0.0.1", "::1"],
        commonName: String = "localhost",
        validity: TimeInterval = 7 * 24 * 3600,
        now: Date = Date(),
        authority: DevelopmentCA? = nil
    ) throws -> DevelopmentPKI {
        let ca = try authority ?? DevelopmentCA.generate(validity: validity, now: now)
        let caKey = ca.key
        let caName = ca.certificate.subject
        let caKeyIdentifier = SubjectKeyIdentifier(hash: ca.certificate.publicKey).keyIdentifier
        let notBefore = now.addingTimeInterval(-3600)
        let notAfter = min(now.addingTimeInterval(validity), ca.certificate.notValidAfter)
        let caCertificate = ca.certificate

        let leafKey = P256.Signing.PrivateKey()
        let leafPublicKey = Certificate.PublicKey(leafKey.publicKey)
        var names = dnsNames.map { GeneralName.dnsName($0) }
        for address in ipAddresses {
            names.append(.ipAddress(ASN1OctetString(contentBytes: try ipAddressBytes(address)[...])))
        }
        let leafCertificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: leafPublicKey,
            notValidBefore: notBefore,
            notValidAfter: notAfter,
            issuer: caName,
            subject: try DistinguishedName {
                OrganizationName("callout-proxy development")
                CommonName(commonName)
            },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                SubjectAlternativeNames(names)
                SubjectKeyIdentifier(hash: leafPublicKey)
                AuthorityKeyIdentifier(keyIdentifier: caKeyIdentifier)
            },
            issuerPrivateKey: Certificate.PrivateKey(caKey)
        )
        return DevelopmentPKI(
            caCertificatePEM: try caCertificate.serializeAsPEM().pemString,
            leafCertificatePEM: try leafCertificate.serializeAsPEM().pemString,
            leafPrivateKeyPEM: leafKey.pemRepresentation
        )
    }

    /// Writes `ca.pem`, `server.pem` (0644) and `server-key.pem` (0600) into `directory`,
    /// creating it if needed. Returns the three file URLs in that order.
    @discardableResult
    public func write(to directory: URL) throws -> (caCertificate: URL, leafCertificate: URL, leafPrivateKey: URL) {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let ca = directory.appendingPathComponent(FileName.caCertificate)
        let leaf = directory.appendingPathComponent(FileName.leafCertificate)
        let key = directory.appendingPathComponent(FileName.leafPrivateKey)
        try PEMFileWriter.store(caCertificatePEM, to: ca, mode: 0o644)
        try PEMFileWriter.store(leafCertificatePEM, to: leaf, mode: 0o644)
        try PEMFileWriter.store(leafPrivateKeyPEM, to: key, mode: 0o600)
        return (ca, leaf, key)
    }

    /// The 4 or 16 network-order bytes of a textual IPv4 or IPv6 address.
    static func ipAddressBytes(_ text: String) throws -> [UInt8] {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        throw DevelopmentPKIError.invalidIPAddress(text)
    }
}

/// Failures of the development PKI helpers.
public enum DevelopmentPKIError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidIPAddress(String)
    case writeFailed(path: String, errno: Int32)

    public var description: String {
        switch self {
        case .invalidIPAddress(let text): "'\(text)' is not an IPv4 or IPv6 address"
        case .writeFailed(let path, let code): "cannot write '\(path)' (errno \(code))"
        }
    }
}

/// Writes text files with an exact permission mode (keys must not be world-readable even briefly).
enum PEMFileWriter {
    static func store(_ text: String, to url: URL, mode: mode_t) throws {
        let path = url.path
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)
        guard descriptor >= 0 else { throw DevelopmentPKIError.writeFailed(path: path, errno: errno) }
        defer { close(descriptor) }
        guard fchmod(descriptor, mode) == 0 else { throw DevelopmentPKIError.writeFailed(path: path, errno: errno) }
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw DevelopmentPKIError.writeFailed(path: path, errno: errno)
            }
            offset += written
        }
    }
}
