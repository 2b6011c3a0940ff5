import CalloutCore

/// What one watched path looked like at one moment: the file a path leads to after every
/// symlink is followed, identified well enough to notice it was replaced or rewritten. A
/// Kubernetes ConfigMap or Secret update swaps a `..data` symlink, so the same path then leads
/// to another file (another resolved path and inode), with no write to the old one.
public enum FileStatus: Sendable, Hashable {
    case missing
    case present(resolvedPath: String, device: UInt64, inode: UInt64, size: Int64, modifiedNanoseconds: Int64)
}

/// The status of every watched path at one moment.
public typealias FileSnapshot = [String: FileStatus]

/// Which files a configuration depends on, and which of them changed. Pure.
public enum WatchedFiles {
    /// The configuration file and every file it names: private keys, certificates, client secret
    /// files and every `ca_file` (already resolved against the configuration file's folder),
    /// sorted, each once.
    public static func paths(configFile: String, config: ProxyConfig) -> [String] {
        var paths: Set<String> = [configFile]
        for certificate in config.certificates {
            paths.insert(certificate.privateKeyFile)
            if let file = certificate.certificateFile { paths.insert(file) }
        }
        paths.formUnion(config.proxy.caFiles)
        for credential in config.externalCredentials where credential.clientAuthentication.usesClientSecret {
            for principal in credential.principals {
                if let source = principal.clientSecret, case .file(let path) = source.kind { paths.insert(path) }
            }
        }
        return paths.sorted()
    }

    /// Paths whose status differs between `old` and `new` (a path in only one counts), sorted.
    public static func changed(from old: FileSnapshot, to new: FileSnapshot) -> [String] {
        Set(old.keys).union(new.keys).filter { old[$0] != new[$0] }.sorted()
    }
}
