import CalloutCore
import CalloutTokens
import Foundation
import NIOConcurrencyHelpers
import NIOSSL

/// The configuration requests are served with, swapped atomically on reload: a request keeps
/// the snapshot it started with.
public final class RuntimeConfiguration: Sendable {
    private let box: NIOLockedValueBox<Snapshot>

    /// A class: each request holds the one it started with without copying the configuration.
    public final class Snapshot: Sendable {
        public let config: ProxyConfig
        public let materials: CredentialMaterials
        public let identity: IdentityResolver
        public let generation: Int
        /// Where each named credential's requests go (lower-cased name), TLS contexts built once
        /// per configuration.
        let upstreams: [String: UpstreamTarget]

        public init(config: ProxyConfig, materials: CredentialMaterials, generation: Int) throws {
            self.config = config
            self.materials = materials
            self.identity = IdentityResolver(settings: config.proxy, callers: config.callers)
            self.generation = generation
            let shared = try NIOSSLContext(configuration: materials.tlsConfiguration())
            var upstreams: [String: UpstreamTarget] = [:]
            for named in config.namedCredentials {
                var tls: NIOSSLContext? = nil
                if named.url.scheme?.lowercased() == "https" {
                    if let name = named.clientCertificate, materials.tlsIdentity(name) != nil {
                        tls = try NIOSSLContext(configuration: materials.tlsConfiguration(clientCertificate: name))
                    } else {
                        tls = shared
                    }
                }
                upstreams[named.name.lowercased()] = UpstreamTarget(url: named.url, tls: tls)
            }
            self.upstreams = upstreams
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

/// A named credential's upstream: the endpoint to connect to and the path its URL starts with.
struct UpstreamTarget: Sendable {
    let endpoint: UpstreamEndpoint

    init(url: URL, tls: NIOSSLContext?) {
        var host = url.host ?? "localhost"
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let port = url.port ?? (tls == nil ? 80 : 443)
        endpoint = UpstreamEndpoint(host: host, port: port, tls: tls)
    }

    /// The request target (path and query) of an absolute `https://host[:port]/path?query` URL.
    static func requestTarget(of url: String) -> String {
        let bytes = url.utf8
        // Past "scheme://", the first "/" or "?" starts the target.
        var slashes = 0
        var index = bytes.startIndex
        while index != bytes.endIndex, slashes < 2 {
            if bytes[index] == UInt8(ascii: "/") { slashes += 1 }
            index = bytes.index(after: index)
        }
        guard slashes == 2,
            let start = bytes[index...].firstIndex(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") })
        else { return "/" }
        let rest = Substring(url.utf8[start...])
        return rest.first == "?" ? "/" + rest : String(rest)
    }
}
