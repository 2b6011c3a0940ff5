import CalloutCore
import CalloutTokens
import NIOConcurrencyHelpers
import NIOSSL

/// The configuration requests are served with, swapped atomically on reload: a request keeps
/// the snapshot it started with.
public final class RuntimeConfiguration: Sendable {
    private let box: NIOLockedValueBox<Snapshot>

    public struct Snapshot: Sendable {
        public let config: ProxyConfig
        public let materials: CredentialMaterials
        public let identity: IdentityResolver
        public let generation: Int
        /// TLS settings per named credential (lower-cased name) that presents a client certificate.
        let upstreamTLS: [String: TLSConfiguration]

        public init(config: ProxyConfig, materials: CredentialMaterials, generation: Int) throws {
            self.config = config
            self.materials = materials
            self.identity = IdentityResolver(settings: config.proxy, callers: config.callers)
            self.generation = generation
            var tls: [String: TLSConfiguration] = [:]
            for named in config.namedCredentials {
                guard let name = named.clientCertificate, materials.tlsIdentity(name) != nil else { continue }
                tls[named.name.lowercased()] = materials.tlsConfiguration(clientCertificate: name)
            }
            self.upstreamTLS = tls
        }
    }

    public init(_ config: ProxyConfig, materials: CredentialMaterials) throws {
        box = NIOLockedValueBox(try Snapshot(config: config, materials: materials, generation: 1))
    }

    public var current: Snapshot { box.withLockedValue { $0 } }

    /// Installs `config` for new requests; returns the new generation.
    @discardableResult
    public func replace(with config: ProxyConfig, materials: CredentialMaterials) throws -> Int {
        let generation = box.withLockedValue { $0.generation } + 1
        let next = try Snapshot(config: config, materials: materials, generation: generation)
        box.withLockedValue { $0 = next }
        return generation
    }
}
