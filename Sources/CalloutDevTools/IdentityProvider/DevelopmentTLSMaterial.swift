import Crypto
import NIOSSL
import SwiftASN1
import X509

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A PEM certificate and private key for a development server.
public struct DevelopmentTLSMaterial: Sendable, Equatable {
    public var certificatePEM: String
    public var privateKeyPEM: String

    public init(certificatePEM: String, privateKeyPEM: String) {
        self.certificatePEM = certificatePEM
        self.privateKeyPEM = privateKeyPEM
    }

    /// A throwaway self-signed P-256 certificate for `127.0.0.1`, `::1` and `localhost`, valid
    /// for a day. Trust `certificatePEM` as the root on the client side.
    public static func selfSignedLoopback(commonName: String = "callout development") throws
        -> DevelopmentTLSMaterial
    {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName(commonName) }
        let now = Date()
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3_600),
            notValidAfter: now.addingTimeInterval(86_400),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames([
                    .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                    .ipAddress(
                        ASN1OctetString(contentBytes: ArraySlice([UInt8](repeating: 0, count: 15) + [1]))),
                    .dnsName("localhost"),
                ])
            },
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
        return DevelopmentTLSMaterial(
            certificatePEM: try certificate.serializeAsPEM().pemString,
            privateKeyPEM: key.pemRepresentation
        )
    }
}

extension DevelopmentTLSMaterial {
    /// A TLS server context presenting this certificate and key; with
    /// `requestClientCertificate`, clients are asked for a certificate (optional: a client
    /// without one is still served).
    public func makeServerContext(requestClientCertificate: Bool = false) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)).map {
                .certificate($0)
            },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem)))
        if requestClientCertificate { configuration.certificateVerification = .optionalVerification }
        return try NIOSSLContext(configuration: configuration)
    }
}
