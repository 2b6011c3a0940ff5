import CalloutCore
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Connections open to each endpoint, all event loops together, against
/// `upstream_max_connections_per_host`. Taken when a connection is opened or closed, never per
/// request.
final class UpstreamBudget: Sendable {
    private let counts = NIOLockedValueBox<[UpstreamEndpoint: Int]>([:])

    init() {}

    /// Takes a slot for a new connection; false when `limit` connections are open already.
    func reserve(_ endpoint: UpstreamEndpoint, limit: Int) -> Bool {
        counts.withLockedValue { counts in
            let now = counts[endpoint, default: 0]
            guard now < limit else { return false }
            counts[endpoint] = now + 1
            return true
        }
    }

    func release(_ endpoint: UpstreamEndpoint) {
        counts.withLockedValue { counts in
            let now = counts[endpoint, default: 1] - 1
            counts[endpoint] = now > 0 ? now : nil
        }
    }

    func count(_ endpoint: UpstreamEndpoint) -> Int { counts.withLockedValue { $0[endpoint, default: 0] } }

    var total: Int { counts.withLockedValue { $0.values.reduce(0, +) } }
}

/// One upstream pool per event loop, made on first use, sharing one connection budget.
final class UpstreamPools: Sendable {
    private let pools = NIOLockedValueBox<[ObjectIdentifier: UpstreamPool]>([:])
    let budget = UpstreamBudget()
    private let observer: any CalloutObserver
    private let desyncLog: RateLimitedLog

    init(logger: Logger, observer: any CalloutObserver) {
        self.desyncLog = RateLimitedLog(logger: logger)
        self.observer = observer
    }

    func pool(for eventLoop: any EventLoop) -> UpstreamPool {
        pools.withLockedValue { pools in
            if let pool = pools[ObjectIdentifier(eventLoop)] { return pool }
            let pool = UpstreamPool(
                eventLoop: eventLoop, budget: budget,
                neighbours: .init(
                    slotFreed: { [weak self] endpoint in self?.slotFreed(endpoint, by: eventLoop) },
                    starved: { [weak self] endpoint in self?.starved(endpoint, on: eventLoop) }),
                onDesync: { [weak self] reason, named in self?.desync(reason, namedCredential: named) })
            pools[ObjectIdentifier(eventLoop)] = pool
            return pool
        }
    }

    private func others(than eventLoop: any EventLoop) -> [UpstreamPool] {
        pools.withLockedValue { $0.values.filter { $0.eventLoop !== eventLoop } }
    }

    private func slotFreed(_ endpoint: UpstreamEndpoint, by eventLoop: any EventLoop) {
        for pool in others(than: eventLoop) {
            pool.eventLoop.execute { pool.slotFreedElsewhere(endpoint) }
        }
    }

    private func starved(_ endpoint: UpstreamEndpoint, on eventLoop: any EventLoop) {
        for pool in others(than: eventLoop) {
            pool.eventLoop.execute { pool.yieldIdle(endpoint) }
        }
    }

    /// An upstream connection was out of step: counted, and logged at most once a minute per
    /// named credential and reason.
    private func desync(_ reason: UpstreamDesync, namedCredential: String?) {
        let label = namedCredential ?? "unknown"
        observer.upstreamDesync(namedCredential: label, reason: reason.rawValue)
        desyncLog.log(
            .warning, kind: label + "|" + reason.rawValue,
            "upstream connection out of step with its requests: closed, not reused",
            metadata: ["named_credential": "\(label)", "reason": "\(reason.rawValue)"])
    }

    func limits(_ settings: ProxySettings) -> UpstreamPool.Limits {
        UpstreamPool.Limits(
            maxConnectionsPerEndpoint: max(1, settings.upstreamMaxConnectionsPerHost),
            connectTimeout: .seconds(Int64(settings.connectTimeoutSeconds)),
            idleTimeout: .seconds(Int64(settings.upstreamIdleTimeoutSeconds)))
    }

    /// A new configuration is in force: connections to endpoints it no longer uses close promptly.
    func retire(keeping current: Set<UpstreamEndpoint>) {
        for pool in pools.withLockedValue({ Array($0.values) }) {
            pool.eventLoop.execute { pool.retire(keeping: current) }
        }
    }

    /// Closes idle upstream connections; busy ones close when their exchange ends.
    func closeAll() {
        for pool in pools.withLockedValue({ Array($0.values) }) {
            pool.eventLoop.execute { pool.close() }
        }
    }

    /// Idle upstream connections' channels, all loops together (for tests).
    func idleChannels() async -> [any Channel] {
        var all: [any Channel] = []
        for pool in pools.withLockedValue({ Array($0.values) }) {
            all += (try? await pool.eventLoop.submit { pool.idleChannels }.get()) ?? []
        }
        return all
    }

    /// Upstream connections open now, all loops together (for tests).
    func openConnections() async -> Int {
        var total = 0
        for pool in pools.withLockedValue({ Array($0.values) }) {
            total += (try? await pool.eventLoop.submit { pool.openConnections }.get()) ?? 0
        }
        return total
    }
}
