import CalloutCore

/// Why a signing key or certificate could not be loaded or used.
///
/// Descriptions name formats, files and environment variables, never key material or
/// passphrases.
public enum KeyLoadError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The text holds no PEM block at all.
    case notPEM
    /// A PEM block with a label this loader does not accept (for example `PUBLIC KEY`).
    case unsupportedFormat(label: String)
    /// The PEM label was recognised but its contents did not parse as that format.
    case malformedKey(format: String)
    /// A key algorithm or curve other than RSA and EC P-256.
    case unsupportedKeyAlgorithm(String)
    /// The key is encrypted and no passphrase was given.
    case passphraseRequired
    /// The passphrase did not decrypt the key (or the encrypted key is damaged).
    case wrongPassphrase
    /// RSA keys below 2048 bits are too weak to sign with.
    case weakRSAKey(bits: Int)
    /// The algorithm needs a different key type than the one loaded.
    case algorithmKeyMismatch(algorithm: SigningAlgorithm, keyType: SigningAlgorithm.KeyType)
    /// The certificate PEM could not be parsed.
    case invalidCertificate(reason: String)
    /// The certificate's public key is not the private key's public key.
    case certificateKeyMismatch
    /// A key or certificate file could not be read.
    case fileUnreadable(path: String, reason: String)
    /// The environment variable expected to hold the passphrase is not set.
    case passphraseVariableNotSet(name: String)

    public var description: String {
        switch self {
        case .notPEM:
            "the key is not PEM text (expected a PEM private key block)"
        case .unsupportedFormat(let label):
            "unsupported PEM block '\(label)': expected RSA PRIVATE KEY, PRIVATE KEY, EC PRIVATE KEY or ENCRYPTED PRIVATE KEY"
        case .malformedKey(let format):
            "the \(format) key could not be parsed"
        case .unsupportedKeyAlgorithm(let what):
            "unsupported key algorithm: \(what) (RSA and EC P-256 are supported)"
        case .passphraseRequired:
            "the private key is encrypted and no passphrase was given"
        case .wrongPassphrase:
            "the passphrase does not decrypt the private key"
        case .weakRSAKey(let bits):
            "the RSA key has \(bits) bits and is too weak to sign (at least 2048 bits required)"
        case .algorithmKeyMismatch(let algorithm, let keyType):
            "signing algorithm \(algorithm.rawValue) needs an \(algorithm.keyType.rawValue) key, but the key is \(keyType.rawValue)"
        case .invalidCertificate(let reason):
            "the certificate could not be parsed: \(reason)"
        case .certificateKeyMismatch:
            "the certificate's public key does not match the private key"
        case .fileUnreadable(let path, let reason):
            "cannot read '\(path)': \(reason)"
        case .passphraseVariableNotSet(let name):
            "the private key passphrase environment variable \(name) is not set"
        }
    }
}
