import CalloutCore
import Foundation

/// Private key files that others on the machine can read, reported by `check` as ssh does.
public enum KeyFilePermissions {
    /// A warning for each `private_key_file` and `client_secret_file` readable by its group or
    /// by others.
    public static func warnings(_ config: ProxyConfig) -> [ConfigIssue] {
        var files = config.certificates.enumerated().map { i, certificate in
            (path: certificate.privateKeyFile, keyPath: "certificate[\(i)].private_key_file")
        }
        for credential in config.externalCredentials where credential.clientAuthentication.usesClientSecret {
            for principal in credential.principals {
                if let source = principal.clientSecret, case .file(let path) = source.kind {
                    files.append((path, source.keyPath))
                }
            }
        }
        return files.compactMap { file in
            let attributes = try? FileManager.default.attributesOfItem(atPath: file.path)
            guard let mode = (attributes?[.posixPermissions] as? NSNumber)?.intValue,
                let message = warning(path: file.path, mode: mode)
            else { return nil }
            return config.issue(file.keyPath, message)
        }
    }

    /// The warning for a key file with permission bits `mode`, nil when only its owner can read it.
    static func warning(path: String, mode: Int) -> String? {
        guard mode & 0o044 != 0 else { return nil }
        let who = mode & 0o040 != 0 && mode & 0o004 != 0 ? "group and others" : mode & 0o040 != 0 ? "group" : "others"
        return
            "'\(path)' is readable by \(who) (mode \(String(format: "%04o", mode & 0o7777))); restrict it with chmod 600"
    }
}
