import CalloutCore
import Foundation

/// Checks, after the configuration parsed, that every referenced key and certificate file is there.
public enum KeyFileCheck {
    public static func problems(
        in config: ProxyConfig, environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> [ConfigIssue] {
        var out: [ConfigIssue] = []
        for (i, c) in config.certificates.enumerated() {
            for (key, path) in [("private_key_file", c.privateKeyFile), ("certificate_file", c.certificateFile)] {
                guard let path else { continue }
                if !FileManager.default.isReadableFile(atPath: path) {
                    out.append(config.issue("certificate[\(i)].\(key)", "cannot read '\(path)'"))
                }
            }
            if let env = c.privateKeyPassphraseEnv, environment[env] == nil {
                out.append(
                    config.issue(
                        "certificate[\(i)].private_key_passphrase_env", "environment variable \(env) is not set"))
            }
        }
        if let ca = config.proxy.caFile, !FileManager.default.isReadableFile(atPath: ca) {
            out.append(config.issue("proxy.ca_file", "cannot read '\(ca)'"))
        }
        return out
    }
}
