import CalloutCore
import Crypto
import X509
import _CryptoExtras

extension SigningKey {
    /// The public half of a signing key, or the key a certificate certifies: RSA (2048 bits or
    /// more) or EC P-256.
    public enum PublicKey: Sendable {
        case rsa(_RSA.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)

        /// Reads a certificate's key; throws `KeyLoadError` for weak RSA keys and other key types.
        public init(certificateKey: Certificate.PublicKey) throws(KeyLoadError) {
            if let rsa = _RSA.Signing.PublicKey(certificateKey) {
                guard rsa.keySizeInBits >= 2048 else { throw KeyLoadError.weakRSAKey(bits: rsa.keySizeInBits) }
                self = .rsa(rsa)
            } else if let p256 = P256.Signing.PublicKey(certificateKey) {
                self = .p256(p256)
            } else {
                throw KeyLoadError.unsupportedKeyAlgorithm("certificate key \(certificateKey)")
            }
        }

        /// RSA or EC P-256.
        public var keyType: SigningAlgorithm.KeyType {
            switch self {
            case .rsa: .rsa
            case .p256: .ec
            }
        }

        /// DER `SubjectPublicKeyInfo`.
        public var derRepresentation: [UInt8] {
            switch self {
            case .rsa(let key): [UInt8](key.derRepresentation)
            case .p256(let key): [UInt8](key.derRepresentation)
            }
        }

        /// PEM `BEGIN PUBLIC KEY`.
        public var pemRepresentation: String {
            switch self {
            case .rsa(let key): key.pemRepresentation
            case .p256(let key): key.pemRepresentation
            }
        }
    }
}
