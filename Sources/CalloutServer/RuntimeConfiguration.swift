import CalloutCore
import CalloutTokens
import NIOConcurrencyHelpers

/// The configuration requests are served with, swapped atomically on reload: a request keeps
/// the snapshot it started with.
public final class RuntimeConfiguration: Sendable {
    private let box: NIOLockedValueBox<Snapshot>

    public struct Snapshot: Sendable {
        public let config: ProxyConfig
        public let identity: IdentityResolver
        public let generation: Int

        public init(config: ProxyConfig, generation: Int) {
            self.config = config
            self.identity = IdentityResolver(settings: config.proxy, callers: config.callers)
            self.generation = generation
        }
    }

    public init(_ config: ProxyConfig) {
        box = NIOLockedValueBox(Snapshot(config: config, generation: 1))
    }

    public var current: Snapshot { box.withLockedValue { $0 } }

    /// Installs `config` for new requests; returns the new generation.
    @discardableResult
    public func replace(with config: ProxyConfig) -> Int {
        box.withLockedValue { snapshot in
            snapshot = Snapshot(config: config, generation: snapshot.generation + 1)
            return snapshot.generation
        }
    }
}
