import CalloutCore
import Foundation
import NIOSSL

/// The keys and certificates a configuration names, loaded and checked once (at start and on
/// reload): signing material for assertions and TLS client identities for mTLS.
/// Problems are reported like configuration problems and never include key material.
public struct CredentialMaterials: Sendable {
    public struct TLSIdentity: Sendable {
        public let certificateChain: [NIOSSLCertificate]
        public let privateKey: NIOSSLPrivateKey
    }

    /// By certificate name, lower-cased.
    public let signing: [String: SigningMaterial]
    /// By certificate name, lower-cased; only certificates used for mTLS.
    public let tlsIdentities: [String: TLSIdentity]

    /// The certificates of `ca_file`, added to the system's trust roots.
    public let additionalTrustRoots: [NIOSSLCertificate]

    /// Client secrets by external credential and principal (see ``clientSecret(credential:principal:)``).
    let clientSecrets: [String: ClientSecret]

    public func signingMaterial(_ certificate: String) -> SigningMaterial? { signing[certificate.lowercased()] }
    public func tlsIdentity(_ certificate: String) -> TLSIdentity? { tlsIdentities[certificate.lowercased()] }

    /// Every loaded client secret, to scrub from identity provider answers.
    public var allClientSecrets: [String] { clientSecrets.values.map(\.value) }

    /// The client secret of `principal` of external credential `credential`, when it has one.
    public func clientSecret(credential: String, principal: String) -> ClientSecret? {
        clientSecrets[ClientSecret.key(credential: credential, principal: principal)]
    }

    public init(
        signing: [String: SigningMaterial] = [:], tlsIdentities: [String: TLSIdentity] = [:],
        additionalTrustRoots: [NIOSSLCertificate] = [],
        clientSecrets: [(credential: String, principal: String, secret: ClientSecret)] = []
    ) {
        self.signing = signing
        self.tlsIdentities = tlsIdentities
        self.additionalTrustRoots = additionalTrustRoots
        var secrets: [String: ClientSecret] = [:]
        for entry in clientSecrets {
            secrets[ClientSecret.key(credential: entry.credential, principal: entry.principal)] = entry.secret
        }
        self.clientSecrets = secrets
    }

    private init(
        signing: [String: SigningMaterial], tlsIdentities: [String: TLSIdentity],
        additionalTrustRoots: [NIOSSLCertificate], secretsByKey: [String: ClientSecret]
    ) {
        self.signing = signing
        self.tlsIdentities = tlsIdentities
        self.additionalTrustRoots = additionalTrustRoots
        self.clientSecrets = secretsByKey
    }

    /// Client TLS towards upstreams and identity providers: TLS 1.2 or later, the system's trust
    /// roots plus `ca_file`, and the named certificate as the client identity when given.
    public func tlsConfiguration(clientCertificate: String? = nil) -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        if !additionalTrustRoots.isEmpty { tls.additionalTrustRoots = [.certificates(additionalTrustRoots)] }
        if let name = clientCertificate, let identity = tlsIdentity(name) {
            tls.certificateChain = identity.certificateChain.map { .certificate($0) }
            tls.privateKey = .privateKey(identity.privateKey)
        }
        return tls
    }

    public static func load(
        _ config: ProxyConfig, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigError) -> CredentialMaterials {
        var issues: [ConfigIssue] = []
        var signing: [String: SigningMaterial] = [:]
        var tls: [String: TLSIdentity] = [:]
        let mtlsNames = Set(
            (config.namedCredentials.compactMap(\.clientCertificate)
                + config.externalCredentials.compactMap(\.identityProviderClientCertificate)).map { $0.lowercased() })
        for (i, c) in config.certificates.enumerated() {
            let path = "certificate[\(i)]"
            do {
                signing[c.name.lowercased()] = try SigningMaterial.load(
                    privateKeyFile: c.privateKeyFile, certificateFile: c.certificateFile,
                    passphraseEnvironmentVariable: c.privateKeyPassphraseEnv, environment: environment)
            } catch let error as KeyLoadError {
                issues.append(
                    config.issue(
                        "\(path).\(keyPath(for: error, certificateFile: c.certificateFile))", error.description))
                continue
            } catch {
                issues.append(config.issue(path, "cannot be loaded"))
                continue
            }
            guard mtlsNames.contains(c.name.lowercased()) else { continue }
            guard let certificateFile = c.certificateFile else {
                issues.append(
                    config.issue(
                        "\(path).certificate_file",
                        "is required: certificate '\(c.name)' is used as a TLS client certificate"))
                continue
            }
            do {
                let passphrase = c.privateKeyPassphraseEnv.flatMap { environment[$0] }
                let key: NIOSSLPrivateKey
                if let passphrase {
                    key = try NIOSSLPrivateKey(file: c.privateKeyFile, format: .pem) { setter in
                        setter(Array(passphrase.utf8))
                    }
                } else {
                    key = try NIOSSLPrivateKey(file: c.privateKeyFile, format: .pem)
                }
                tls[c.name.lowercased()] = TLSIdentity(
                    certificateChain: try NIOSSLCertificate.fromPEMFile(certificateFile), privateKey: key)
            } catch {
                issues.append(
                    config.issue(
                        path,
                        "cannot be used as a TLS client identity (the key or certificate is not accepted by the TLS library)"
                    ))
            }
        }
        for (i, e) in config.externalCredentials.enumerated() where e.flow.signsJWT {
            guard let material = signing[e.signingCertificate.lowercased()] else { continue }
            if !material.key.canSign(e.signingAlgorithm) {
                issues.append(
                    config.issue(
                        "external_credential[\(i)].signing_algorithm",
                        "\(e.signingAlgorithm.rawValue) needs an \(e.signingAlgorithm.keyType.rawValue) key, but certificate '\(e.signingCertificate)' holds an \(material.key.keyType.rawValue) key"
                    ))
            }
        }
        var roots: [NIOSSLCertificate] = []
        for (i, ca) in config.proxy.caFiles.enumerated() {
            let keyPath = config.proxy.caFiles.count == 1 ? "proxy.ca_file" : "proxy.ca_file[\(i)]"
            do throws(KeyLoadError) {
                let text = try SigningMaterial.readText(ca)
                guard let certificates = try? NIOSSLCertificate.fromPEMBytes(Array(text.utf8)), !certificates.isEmpty
                else {
                    issues.append(config.issue(keyPath, "'\(ca)' holds no PEM certificate"))
                    continue
                }
                roots += certificates
            } catch {
                issues.append(config.issue(keyPath, error.description))
            }
        }
        let (secrets, secretIssues) = ClientSecret.load(config, environment: environment)
        issues += secretIssues
        if !issues.isEmpty { throw ConfigError(inLineOrder: issues) }
        return CredentialMaterials(
            signing: signing, tlsIdentities: tls, additionalTrustRoots: roots, secretsByKey: secrets)
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
