import CalloutCore
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Where upstream connections go: host, port and the TLS context they are secured with (`nil`
/// for `http://`, which only `allow_insecure_http` permits). Two named credentials with the same
/// endpoint and TLS context share connections. A reload that leaves the TLS settings as they
/// were keeps the context (``RuntimeConfiguration``), and so the endpoint and its connections.
struct UpstreamEndpoint: Hashable, Sendable {
    let host: String
    let port: Int
    let tls: NIOSSLContext?

    static func == (a: UpstreamEndpoint, b: UpstreamEndpoint) -> Bool {
        a.host == b.host && a.port == b.port && a.tls === b.tls
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(host)
        hasher.combine(port)
        hasher.combine(tls.map(ObjectIdentifier.init))
    }
}

/// Keep-alive upstream connections for one event loop. A client connection and the upstream
/// connections serving it share the loop, so a callout never changes threads. Every method
/// must be called on ``eventLoop``.
///
/// `upstream_max_connections_per_host` holds for the whole process: every loop's pool takes its
/// connections from one ``UpstreamBudget``, and a callout that finds the budget spent waits on
/// its own loop until a connection is released there or a slot frees up on any loop.
final class UpstreamPool: @unchecked Sendable {
    struct Limits {
        /// Connections to one endpoint, all loops together; requests beyond it wait.
        var maxConnectionsPerEndpoint: Int
        var connectTimeout: TimeAmount
        /// Idle connections older than this are closed.
        var idleTimeout: TimeAmount
    }

    typealias Callback = (Result<UpstreamConnection, any Error>) -> Void

    /// A callout waiting for a connection. Cancelled when the callout ends first (timeout, refusal,
    /// client gone): it is then skipped, and nothing it holds stays queued.
    final class Waiter {
        fileprivate var callback: Callback?
        /// Takes no connection that has carried an exchange: it retries one the upstream closed
        /// under it, and a released connection may be about to close the same way.
        fileprivate let fresh: Bool
        fileprivate init(fresh: Bool, _ callback: @escaping Callback) {
            self.fresh = fresh
            self.callback = callback
        }
        func cancel() { callback = nil }
        var isCancelled: Bool { callback == nil }
    }

    /// What a pool asks of the other loops' pools.
    struct Neighbours {
        /// A slot of `endpoint`'s budget was freed here and nobody here waits for it.
        var slotFreed: (UpstreamEndpoint) -> Void = { _ in }
        /// A callout here waits for `endpoint` while the budget is spent: an idle connection
        /// elsewhere should give up its slot.
        var starved: (UpstreamEndpoint) -> Void = { _ in }
    }

    let eventLoop: any EventLoop
    private let budget: UpstreamBudget
    private let neighbours: Neighbours
    private let onDesync: UpstreamDesyncReport
    private var idle: [UpstreamEndpoint: [UpstreamConnection]] = [:]
    private var open: [UpstreamEndpoint: Int] = [:]
    private var waiters: [UpstreamEndpoint: [Waiter]] = [:]
    /// Endpoints no configuration names any more: their connections are not reused.
    private var retired: Set<UpstreamEndpoint> = []
    private var limits = Limits(maxConnectionsPerEndpoint: 1, connectTimeout: .seconds(10), idleTimeout: .seconds(60))
    private var sweeper: RepeatedTask?
    private var closed = false

    init(
        eventLoop: any EventLoop, budget: UpstreamBudget = UpstreamBudget(), neighbours: Neighbours = Neighbours(),
        onDesync: @escaping UpstreamDesyncReport = { _, _ in }
    ) {
        self.eventLoop = eventLoop
        self.budget = budget
        self.neighbours = neighbours
        self.onDesync = onDesync
    }

    /// An idle connection to `endpoint`, or a new one; with `fresh`, always a new one.
    /// Returns the waiter when the callout has to wait (the budget for `endpoint` is spent).
    @discardableResult
    func acquire(_ endpoint: UpstreamEndpoint, limits: Limits, fresh: Bool = false, _ callback: @escaping Callback)
        -> Waiter?
    {
        eventLoop.assertInEventLoop()
        guard !closed else {
            callback(.failure(ChannelError.ioOnClosedChannel))
            return nil
        }
        self.limits = limits
        retired.remove(endpoint)
        if !fresh, let connection = takeIdle(endpoint) {
            callback(.success(connection))
            return nil
        }
        let waiter = Waiter(fresh: fresh, callback)
        if budget.reserve(endpoint, limit: limits.maxConnectionsPerEndpoint) {
            connect(endpoint, waiter)
        } else if fresh, let connection = takeIdle(endpoint) {
            // At the limit: an idle connection here gives its slot to the new one.
            forget(connection, keepingSlot: true)
            connection.abandon()
            connect(endpoint, waiter)
        } else {
            waiters[endpoint, default: []].append(waiter)
            neighbours.starved(endpoint)
            return waiter
        }
        return nil
    }

    /// The first waiter for `endpoint` that is still waiting, removed from the queue.
    private func nextWaiter(_ endpoint: UpstreamEndpoint) -> Waiter? {
        guard var queue = waiters[endpoint] else { return nil }
        var found: Waiter? = nil
        while found == nil, !queue.isEmpty {
            let waiter = queue.removeFirst()
            if !waiter.isCancelled { found = waiter }
        }
        waiters[endpoint] = queue.isEmpty ? nil : queue
        return found
    }

    /// Returns a connection after its exchange; `reusable` is false when the exchange did not
    /// finish cleanly or either side asked to close. A connection whose exchanges went out of
    /// step is never reused, whatever `reusable` says.
    func release(_ connection: UpstreamConnection, reusable: Bool) {
        eventLoop.assertInEventLoop()
        connection.handler.delegate = nil
        let endpoint = connection.endpoint
        if reusable, connection.handler.machine.isSettling {
            // Back to the pool once the read that carried the response's end is over.
            connection.handler.onSettled = { [unowned self] in self.release(connection, reusable: true) }
            return
        }
        guard reusable, !closed, !retired.contains(endpoint), connection.canCarryAnotherExchange else {
            connection.abandon()
            return
        }
        // Owed to a callout waiting on another loop: its turn comes before the next one here.
        if !owedSlots.isEmpty, owedSlots.remove(endpoint) != nil { return giveUp(connection) }
        if let next = nextWaiter(endpoint), let callback = next.callback {
            if next.fresh, connection.reused {
                // Its slot goes to a new connection: a retry never meets a used one again.
                forget(connection, keepingSlot: true)
                connection.abandon()
                return connect(endpoint, next)
            }
            next.cancel()
            return callback(.success(connection))
        }
        connection.idleSince = .now()
        connection.idleLimit = Self.idleLimit(limits.idleTimeout, upstreamSays: connection.handler.keepAliveTimeout)
        guard connection.idleLimit > .zero else { return connection.abandon() }
        idle[endpoint, default: []].append(connection)
        startSweeperIfNeeded()
    }

    /// How long a connection may idle: the setting, and a second less than the upstream's own
    /// `Keep-Alive: timeout`, so the proxy closes it before the upstream does.
    static func idleLimit(_ setting: TimeAmount, upstreamSays: TimeAmount?) -> TimeAmount {
        guard let upstreamSays else { return setting }
        return min(setting, upstreamSays - .seconds(1))
    }

    /// Closes idle connections and refuses new exchanges (shutdown).
    func close() {
        eventLoop.assertInEventLoop()
        closed = true
        sweeper?.cancel()
        sweeper = nil
        let all = idle.values.flatMap { $0 }
        idle = [:]
        for connection in all { connection.abandon() }
        let pending = waiters.values.flatMap { $0 }
        waiters = [:]
        for waiter in pending {
            let callback = waiter.callback
            waiter.cancel()
            callback?(.failure(ChannelError.ioOnClosedChannel))
        }
    }

    /// A new configuration no longer uses the endpoints outside `current`: their idle
    /// connections close now, busy ones when their exchange ends.
    func retire(keeping current: Set<UpstreamEndpoint>) {
        eventLoop.assertInEventLoop()
        let gone = Set(open.keys).union(idle.keys).subtracting(current)
        retired.formUnion(gone)
        for endpoint in gone {
            for connection in idle.removeValue(forKey: endpoint) ?? [] { connection.abandon() }
        }
    }

    /// A slot of `endpoint`'s budget was freed on another loop: a callout waiting here takes it.
    func slotFreedElsewhere(_ endpoint: UpstreamEndpoint) {
        eventLoop.assertInEventLoop()
        guard !closed, waiters[endpoint] != nil else { return }
        guard budget.reserve(endpoint, limit: limits.maxConnectionsPerEndpoint) else {
            // Taken by another loop first: ask again for a turn.
            return neighbours.starved(endpoint)
        }
        if let waiter = nextWaiter(endpoint) {
            connect(endpoint, waiter)
        } else {
            budget.release(endpoint)
        }
    }

    /// A callout on another loop waits for `endpoint`: an idle connection here gives up its slot,
    /// or, if all are busy, the next one released here does.
    func yieldIdle(_ endpoint: UpstreamEndpoint) {
        eventLoop.assertInEventLoop()
        if let connection = takeIdle(endpoint) {
            giveUp(connection)
        } else if open[endpoint] != nil {
            owedSlots.insert(endpoint)
        }
    }

    /// Endpoints whose next released connection closes, for a callout waiting on another loop.
    private var owedSlots: Set<UpstreamEndpoint> = []
    /// Connections closing so that their slot goes to another loop, not to a waiter here.
    private var givenUp: Set<ObjectIdentifier> = []

    private func giveUp(_ connection: UpstreamConnection) {
        givenUp.insert(ObjectIdentifier(connection))
        connection.abandon()
    }

    /// Connections open right now (idle and busy), for tests and metrics.
    var openConnections: Int { open.values.reduce(0, +) }

    /// The idle connections' channels (for tests that inspect their sockets).
    var idleChannels: [any Channel] { idle.values.flatMap { $0.map(\.channel) } }

    // MARK: -

    /// An idle connection to `endpoint` that is still good, if there is one (the common case,
    /// taken without a callback).
    func takeIdle(_ endpoint: UpstreamEndpoint) -> UpstreamConnection? {
        eventLoop.assertInEventLoop()
        guard !closed, !idle.isEmpty, let index = idle.index(forKey: endpoint) else { return nil }
        // In place: a copy of the list taken out of the dictionary would be copied again to change.
        defer { if idle.values[index].isEmpty { idle.remove(at: index) } }
        // Most recently used first: its TCP and TLS state are warmest.
        while let connection = idle.values[index].popLast() {
            if connection.canCarryAnotherExchange { return connection }
            connection.abandon()
        }
        return nil
    }

    /// Connections whose close has already been accounted for: their slot went to a new one.
    private var slotsHandedOver: Set<ObjectIdentifier> = []

    private func forget(_ connection: UpstreamConnection, keepingSlot: Bool) {
        if keepingSlot { slotsHandedOver.insert(ObjectIdentifier(connection)) }
    }

    private func connect(_ endpoint: UpstreamEndpoint, _ waiter: Waiter) {
        open[endpoint, default: 0] += 1
        let tls = endpoint.tls
        let host = endpoint.host
        let connectTimeout = limits.connectTimeout
        let idleTimeout = limits.idleTimeout
        let onDesync = self.onDesync
        // SNI carries names only; an IP address is checked against the certificate's IP SANs.
        let serverName: String? = IPAddress.parse(host) != nil ? nil : host
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls {
                        try sync.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    let handler = UpstreamConnectionHandler(onDesync: onDesync)
                    try sync.addHandler(UpstreamBytesMonitor(connection: handler))
                    try sync.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
                    try sync.addHandler(handler)
                }
            }
        // Handed over once TLS is established: until then writes would pile up inside the TLS
        // handler, unseen by the channel's writability (a streamed body would not be held back).
        let deliver = { (result: Result<UpstreamConnection, any Error>) in
            if let callback = waiter.callback {
                waiter.cancel()
                callback(result)
            } else if case .success(let connection) = result {
                // Its callout ended while it connected: it serves the next one.
                self.release(connection, reusable: true)
            }
        }
        bootstrap.connect(host: host, port: endpoint.port).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                guard let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamConnectionHandler.self)
                else {
                    channel.close(promise: nil)
                    self.connectionClosed(endpoint, slotHandedOver: false, givenUp: false)
                    return deliver(.failure(ChannelError.inappropriateOperationForState))
                }
                let connection = UpstreamConnection(
                    channel: channel, endpoint: endpoint, handler: handler, idleLimit: idleTimeout)
                channel.closeFuture.assumeIsolated().whenComplete { _ in
                    let handedOver = self.slotsHandedOver.remove(ObjectIdentifier(connection)) != nil
                    let givenUp = self.givenUp.remove(ObjectIdentifier(connection)) != nil
                    self.removeIdle(connection)
                    self.connectionClosed(endpoint, slotHandedOver: handedOver, givenUp: givenUp)
                }
                // The TLS handshake counts against the connect timeout too.
                let handshakeTimeout = self.eventLoop.assumeIsolated().scheduleTask(in: connectTimeout) {
                    channel.pipeline.fireErrorCaught(ChannelError.connectTimeout(connectTimeout))
                }
                handler.whenReady(tls: tls != nil) { error in
                    handshakeTimeout.cancel()
                    if let error {
                        channel.close(promise: nil)
                        deliver(.failure(error))
                    } else {
                        deliver(.success(connection))
                    }
                }
            case .failure(let error):
                self.connectionClosed(endpoint, slotHandedOver: false, givenUp: false)
                deliver(.failure(error))
            }
        }
    }

    private func connectionClosed(_ endpoint: UpstreamEndpoint, slotHandedOver: Bool, givenUp: Bool) {
        let count = open[endpoint, default: 1] - 1
        open[endpoint] = count > 0 ? count : nil
        if count <= 0 { retired.remove(endpoint) }
        if slotHandedOver { return }
        // A waiter here gets a new connection in the freed slot, unless the slot was given up for
        // another loop's waiter; then the callouts waiting here ask for a turn in return.
        if !closed, !givenUp, let next = nextWaiter(endpoint) {
            connect(endpoint, next)
        } else {
            budget.release(endpoint)
            neighbours.slotFreed(endpoint)
            if givenUp, waiters[endpoint] != nil { neighbours.starved(endpoint) }
        }
    }

    private func removeIdle(_ connection: UpstreamConnection) {
        guard var list = idle[connection.endpoint], let i = list.firstIndex(where: { $0 === connection }) else {
            return
        }
        list.remove(at: i)
        idle[connection.endpoint] = list.isEmpty ? nil : list
    }

    private func startSweeperIfNeeded() {
        guard sweeper == nil else { return }
        let interval = TimeAmount.nanoseconds(max(limits.idleTimeout.nanoseconds / 4, 1_000_000_000))
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        sweeper = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { task in
            loopBound.value.sweep(task)
        }
    }

    private func sweep(_ task: RepeatedTask) {
        let now = NIODeadline.now()
        var expired: [UpstreamConnection] = []
        for (endpoint, list) in idle {
            let keep = list.filter { $0.idleSince + $0.idleLimit > now }
            if keep.count != list.count {
                expired.append(contentsOf: list.filter { $0.idleSince + $0.idleLimit <= now })
                idle[endpoint] = keep.isEmpty ? nil : keep
            }
        }
        for connection in expired { connection.abandon() }
        if idle.isEmpty {
            task.cancel()
            sweeper = nil
        }
    }
}
