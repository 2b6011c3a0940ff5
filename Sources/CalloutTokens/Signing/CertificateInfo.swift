import Crypto
import Foundation
import SwiftASN1
import X509

/// What the assertion needs from a signing certificate: its thumbprints and public key.
public struct CertificateInfo: Sendable {
    /// The subject distinguished name, e.g. `CN=acme-client,O=Example`.
    public let subject: String
    /// The end of the validity period.
    public let notValidAfter: Date
    /// The certificate's DER bytes, exactly as read.
    public let derBytes: [UInt8]
    /// The public key in the certificate.
    public let publicKey: SigningKey.PublicKey

    /// Parses the first `BEGIN CERTIFICATE` block of `pem` (a chain file is fine).
    public init(pem: String) throws {
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: pem)
        } catch {
            throw KeyLoadError.invalidCertificate(reason: "not PEM text")
        }
        guard let document = documents.first(where: { $0.discriminator == "CERTIFICATE" }) else {
            throw KeyLoadError.invalidCertificate(reason: "no 'BEGIN CERTIFICATE' block")
        }
        let certificate: Certificate
        do {
            certificate = try Certificate(derEncoded: document.derBytes)
        } catch {
            throw KeyLoadError.invalidCertificate(reason: "not an X.509 certificate")
        }
        self.subject = certificate.subject.description
        self.notValidAfter = certificate.notValidAfter
        self.derBytes = document.derBytes
        self.publicKey = try SigningKey.PublicKey(certificateKey: certificate.publicKey)
    }

    /// JWS `x5t`: base64url (no padding) of the SHA-1 of the DER, the same digest as
    /// `openssl x509 -noout -fingerprint -sha1`.
    public var x5t: String {
        Base64URL.encode(Insecure.SHA1.hash(data: derBytes))
    }

    /// JWS `x5t#S256`: base64url (no padding) of the SHA-256 of the DER.
    public var x5tS256: String {
        Base64URL.encode(SHA256.hash(data: derBytes))
    }

    /// Whether the certificate certifies `key`'s public key.
    public func matches(_ key: SigningKey) -> Bool {
        publicKey.derRepresentation == key.publicKeyDER
    }
}
