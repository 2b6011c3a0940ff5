import CalloutCore
import CalloutTokens
import Foundation
import NIOConcurrencyHelpers
import NIOSSL

/// The configuration requests are served with, swapped atomically on reload: a request keeps
/// the snapshot it started with.
public final class RuntimeConfiguration: Sendable {
    private let box: NIOLockedValueBox<Snapshot>
    private let replaced = NIOLockedValueBox<[@Sendable (Snapshot) -> Void]>([])

    /// A class: each request holds the one it started with without copying the configuration.
    public final class Snapshot: Sendable {
        public let config: ProxyConfig
        public let materials: CredentialMaterials
        public let identity: IdentityResolver
        public let generation: Int
        /// Where each named credential's requests go.
        let upstreams: [CaseInsensitiveName: UpstreamTarget]
        /// The TLS contexts the upstreams use, each with the settings it was made from.
        let tlsContexts: [(configuration: TLSConfiguration, context: NIOSSLContext)]
        /// Token cache keys made once, by external credential and principal (configured names),
        /// where they are the same for every caller (constant scope, claims and header).
        let tokenKeys: TokenKeys

        /// TLS contexts are made once per distinct TLS setting, and taken over from `previous`
        /// where the setting is unchanged: the upstream endpoints stay the same objects across a
        /// reload, and so do their pooled connections and their connection limit.
        public convenience init(config: ProxyConfig, materials: CredentialMaterials, generation: Int) throws {
            try self.init(config: config, materials: materials, generation: generation, previous: nil)
        }

        init(config: ProxyConfig, materials: CredentialMaterials, generation: Int, previous: Snapshot?) throws {
            self.config = config
            self.materials = materials
            self.identity = IdentityResolver(settings: config.proxy, callers: config.callers)
            self.generation = generation
            var contexts: [(configuration: TLSConfiguration, context: NIOSSLContext)] = []
            func context(_ configuration: TLSConfiguration) throws -> NIOSSLContext {
                if let made = contexts.first(where: { $0.configuration.bestEffortEquals(configuration) }) {
                    return made.context
                }
                let context =
                    try previous?.tlsContexts.first(where: { $0.configuration.bestEffortEquals(configuration) })?
                    .context ?? NIOSSLContext(configuration: configuration)
                contexts.append((configuration, context))
                return context
            }
            var upstreams: [CaseInsensitiveName: UpstreamTarget] = [:]
            for named in config.namedCredentials {
                var tls: NIOSSLContext? = nil
                if named.url.scheme?.lowercased() == "https" {
                    if let name = named.clientCertificate, materials.tlsIdentity(name) != nil {
                        tls = try context(materials.tlsConfiguration(clientCertificate: name))
                    } else {
                        tls = try context(materials.tlsConfiguration())
                    }
                }
                upstreams[CaseInsensitiveName(named.name)] = UpstreamTarget(
                    url: named.url, tls: tls, hostHeader: named.hostHeader)
            }
            self.upstreams = upstreams
            self.tlsContexts = contexts
            self.tokenKeys = Self.constantTokenKeys(config, materials)
        }

        /// Keys by principal name, by external credential name.
        typealias TokenKeys = [String: [String: TokenCacheKey]]

        private static func constantTokenKeys(_ config: ProxyConfig, _ materials: CredentialMaterials) -> TokenKeys {
            let preparation = TokenPreparation(config: config, materials: materials)
            var byCredential: TokenKeys = [:]
            for credential in config.externalCredentials {
                // A name given twice (possible only in code: the loader refuses it) gets no key.
                guard config.externalCredentials.filter({ $0.name.caseInsensitiveEquals(credential.name) }).count == 1
                else { continue }
                var keys: [String: TokenCacheKey] = [:]
                for principal in credential.principals
                where credential.principals.filter({ $0.name == principal.name }).count == 1 {
                    keys[principal.name] = preparation.constantCacheKey(credential: credential, principal: principal)
                }
                byCredential[credential.name] = keys
            }
            return byCredential
        }

        /// The token cache key made beforehand for this principal, if its formulas are constants.
        func tokenKey(credential: String, principal: String) -> TokenCacheKey? {
            tokenKeys[credential]?[principal]
        }

        /// Every endpoint this configuration sends callouts to.
        var endpoints: Set<UpstreamEndpoint> { Set(upstreams.values.map(\.endpoint)) }
    }

    public init(_ config: ProxyConfig, materials: CredentialMaterials) throws {
        box = NIOLockedValueBox(try Snapshot(config: config, materials: materials, generation: 1))
    }

    public var current: Snapshot { box.withLockedValue { $0 } }

    /// Installs `config` for new requests; returns the new generation.
    @discardableResult
    public func replace(with config: ProxyConfig, materials: CredentialMaterials) throws -> Int {
        let previous = current
        let next = try Snapshot(
            config: config, materials: materials, generation: previous.generation + 1, previous: previous)
        box.withLockedValue { $0 = next }
        for body in replaced.withLockedValue({ $0 }) { body(next) }
        return next.generation
    }

    /// Calls `body` with each configuration installed from now on.
    func whenReplaced(_ body: @escaping @Sendable (Snapshot) -> Void) {
        replaced.withLockedValue { $0.append(body) }
    }
}

/// A named credential's upstream: the endpoint to connect to and the path its URL starts with.
struct UpstreamTarget: Sendable {
    let endpoint: UpstreamEndpoint
    /// The `Host` header sent upstream (``NamedCredentialConfig/hostHeader``), made once.
    let hostHeader: String

    init(url: URL, tls: NIOSSLContext?, hostHeader: String) {
        self.hostHeader = hostHeader
        var host = url.host ?? "localhost"
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let port = url.port ?? (tls == nil ? 80 : 443)
        endpoint = UpstreamEndpoint(host: host, port: port, tls: tls)
    }
}
