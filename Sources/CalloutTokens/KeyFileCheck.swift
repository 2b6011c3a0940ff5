import CalloutCore
import Foundation

/// Checks, after the configuration parsed, that every key and certificate loads, is strong enough
/// and fits the algorithm that uses it. Messages never include key material.
public enum KeyFileCheck {
    public static func problems(
        in config: ProxyConfig, environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> [ConfigIssue] {
        var out: [ConfigIssue] = []
        var loaded: [String: SigningMaterial] = [:]
        for (i, c) in config.certificates.enumerated() {
            do {
                loaded[c.name.lowercased()] = try SigningMaterial.load(
                    privateKeyFile: c.privateKeyFile, certificateFile: c.certificateFile,
                    passphraseEnvironmentVariable: c.privateKeyPassphraseEnv, environment: environment)
            } catch let error as KeyLoadError {
                out.append(config.issue("certificate[\(i)].\(keyPath(for: error, certificateFile: c.certificateFile))", error.description))
            } catch {
                out.append(config.issue("certificate[\(i)]", "cannot be loaded"))
            }
        }
        for (i, e) in config.externalCredentials.enumerated() {
            guard let material = loaded[e.signingCertificate.lowercased()] else { continue }
            if !material.key.canSign(e.signingAlgorithm) {
                out.append(
                    config.issue(
                        "external_credential[\(i)].signing_algorithm",
                        "\(e.signingAlgorithm.rawValue) needs an \(e.signingAlgorithm.keyType.rawValue) key, but certificate '\(e.signingCertificate)' holds an \(material.key.keyType.rawValue) key"
                    ))
            }
        }
        if let ca = config.proxy.caFile, !FileManager.default.isReadableFile(atPath: ca) {
            out.append(config.issue("proxy.ca_file", "cannot read '\(ca)'"))
        }
        return out
    }

    private static func keyPath(for error: KeyLoadError, certificateFile: String?) -> String {
        switch error {
        case .invalidCertificate, .certificateKeyMismatch: "certificate_file"
        case .passphraseRequired, .wrongPassphrase, .passphraseVariableNotSet: "private_key_passphrase_env"
        case .fileUnreadable(let path, _) where path == certificateFile: "certificate_file"
        default: "private_key_file"
        }
    }
}
