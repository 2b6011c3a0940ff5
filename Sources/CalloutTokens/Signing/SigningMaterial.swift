import CalloutCore
import Crypto
import Foundation

/// A signing key and, optionally, its certificate (whose thumbprints go in the JWS header).
public struct SigningMaterial: Sendable {
    public let key: SigningKey
    public let certificate: CertificateInfo?
    /// SHA-256 (lowercase hex) of the public key's SubjectPublicKeyInfo DER: identifies the key in
    /// token cache keys without revealing anything of the private key.
    public let publicKeyFingerprint: String

    /// Pairs a key and certificate; throws `KeyLoadError.certificateKeyMismatch` if the
    /// certificate is not for this key.
    public init(key: SigningKey, certificate: CertificateInfo? = nil) throws {
        if let certificate, !certificate.matches(key) { throw KeyLoadError.certificateKeyMismatch }
        self.key = key
        self.certificate = certificate
        self.publicKeyFingerprint = Hex.encode(SHA256.hash(data: key.publicKeyDER))
    }

    /// Loads a key (and certificate) from PEM text. See `SigningKey.init(pem:passphrase:)`.
    public static func load(
        privateKeyPEM: String, certificatePEM: String?, passphrase: String?
    ) throws -> SigningMaterial {
        let key = try SigningKey(pem: privateKeyPEM, passphrase: passphrase)
        let certificate = try certificatePEM.map { try CertificateInfo(pem: $0) }
        return try SigningMaterial(key: key, certificate: certificate)
    }

    /// Loads a key (and certificate) from files. The passphrase, when the key is encrypted,
    /// comes from the environment variable named `passphraseEnvironmentVariable`, looked up
    /// in `environment` (pass `ProcessInfo.processInfo.environment` in production).
    ///
    /// Errors name the file or variable, never their contents.
    public static func load(
        privateKeyFile: String,
        certificateFile: String?,
        passphraseEnvironmentVariable: String?,
        environment: [String: String]
    ) throws -> SigningMaterial {
        let keyPEM = try readText(privateKeyFile)
        let certificatePEM = try certificateFile.map(readText)
        var passphrase: String?
        if let name = passphraseEnvironmentVariable {
            passphrase = environment[name]
            if passphrase == nil,
                keyPEM.contains("BEGIN ENCRYPTED PRIVATE KEY") || keyPEM.contains("Proc-Type: 4,ENCRYPTED")
            {
                throw KeyLoadError.passphraseVariableNotSet(name: name)
            }
        }
        return try load(privateKeyPEM: keyPEM, certificatePEM: certificatePEM, passphrase: passphrase)
    }

    /// Throws `KeyLoadError.algorithmKeyMismatch` unless the key can sign with `algorithm`.
    public func requireCanSign(_ algorithm: SigningAlgorithm) throws {
        try key.requireCanSign(algorithm)
    }

    /// The text of a key, certificate or CA file; `KeyLoadError.fileUnreadable` says why not.
    static func readText(_ path: String) throws(KeyLoadError) -> String {
        let url = URL(fileURLWithPath: path)
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "the file is not readable" : "no such file"
            throw KeyLoadError.fileUnreadable(path: path, reason: reason)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw KeyLoadError.fileUnreadable(path: path, reason: "the file is not UTF-8 text")
        }
        return text
    }
}
