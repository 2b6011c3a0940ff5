import CalloutCore
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS

/// Where upstream connections go: host, port and the TLS context they are secured with (`nil`
/// for `http://`, which only `allow_insecure_http` permits). Two named credentials with the same
/// endpoint and TLS context share connections.
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

/// Receives one exchange's response, on the connection's event loop.
protocol UpstreamExchangeDelegate: AnyObject {
    func upstreamHead(_ head: HTTPResponseHead)
    func upstreamBody(_ buffer: ByteBuffer)
    func upstreamEnd()
    /// The end of one read from the socket: a good moment to flush what was written to the caller.
    func upstreamReadComplete()
    /// The connection failed or closed before the response ended.
    func upstreamFailed(_ error: any Error)
    func upstreamWritabilityChanged()
    /// False while the caller cannot take more response bytes: the connection stops reading.
    var acceptsResponseBytes: Bool { get }
}

/// The upstream closed the connection before the response ended.
struct UpstreamClosedError: Error {}

/// One keep-alive HTTP/1.1 connection to an upstream. Used on its event loop only.
final class UpstreamConnection {
    let channel: any Channel
    let endpoint: UpstreamEndpoint
    fileprivate let handler: UpstreamConnectionHandler
    /// Has carried an exchange before: a failure before any response byte may be a keep-alive
    /// race (the upstream closed it while idle), worth one more try on a fresh connection.
    fileprivate(set) var reused = false
    fileprivate var idleSince = NIODeadline.now()

    fileprivate init(channel: any Channel, endpoint: UpstreamEndpoint, handler: UpstreamConnectionHandler) {
        self.channel = channel
        self.endpoint = endpoint
        self.handler = handler
    }

    var isWritable: Bool { channel.isWritable }

    /// Starts an exchange: response parts go to `delegate` until its end or a failure.
    func begin(_ delegate: any UpstreamExchangeDelegate) {
        handler.delegate = delegate
        handler.exchangeActive = true
    }

    func write(_ part: HTTPClientRequestPart) {
        handler.write(part)
    }

    func flush() { handler.flush() }

    /// Resumes reading after the caller drained its buffers.
    func resumeReading() { handler.resumeReading() }

    /// Ends the exchange early: the connection is closed and not reused.
    func abandon() {
        handler.delegate = nil
        handler.exchangeActive = false
        channel.close(promise: nil)
    }
}

/// Keep-alive upstream connections for one event loop. A client connection and the upstream
/// connections serving it share the loop, so a callout never changes threads. Every method
/// must be called on ``eventLoop``.
final class UpstreamPool: @unchecked Sendable {
    struct Limits {
        /// Connections to one endpoint from this pool; requests beyond it wait for one to free up.
        var maxConnectionsPerEndpoint: Int
        var connectTimeout: TimeAmount
    }

    /// Idle connections older than this are closed.
    static let idleTimeout = TimeAmount.seconds(60)

    typealias Callback = (Result<UpstreamConnection, any Error>) -> Void

    /// A callout waiting for a connection. Cancelled when the callout ends first (timeout, refusal,
    /// client gone): it is then skipped, and nothing it holds stays queued.
    final class Waiter {
        fileprivate var callback: Callback?
        fileprivate init(_ callback: @escaping Callback) { self.callback = callback }
        func cancel() { callback = nil }
        var isCancelled: Bool { callback == nil }
    }

    let eventLoop: any EventLoop
    private var idle: [UpstreamEndpoint: [UpstreamConnection]] = [:]
    private var open: [UpstreamEndpoint: Int] = [:]
    private var waiters: [UpstreamEndpoint: [Waiter]] = [:]
    private var connectTimeout = TimeAmount.seconds(10)
    private var sweeper: RepeatedTask?
    private var closed = false

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// An idle connection to `endpoint`, or a new one; with `fresh`, always a new one.
    /// Returns the waiter when the callout has to wait (the pool is at its limit for `endpoint`).
    @discardableResult
    func acquire(_ endpoint: UpstreamEndpoint, limits: Limits, fresh: Bool = false, _ callback: @escaping Callback)
        -> Waiter?
    {
        eventLoop.assertInEventLoop()
        guard !closed else {
            callback(.failure(ChannelError.ioOnClosedChannel))
            return nil
        }
        connectTimeout = limits.connectTimeout
        if !fresh, let connection = takeIdle(endpoint) {
            callback(.success(connection))
            return nil
        }
        let waiter = Waiter(callback)
        if open[endpoint, default: 0] >= limits.maxConnectionsPerEndpoint {
            if fresh, let connection = takeIdle(endpoint) {
                // At the limit: make room by replacing an idle connection.
                connection.abandon()
            } else {
                waiters[endpoint, default: []].append(waiter)
                return waiter
            }
        }
        connect(endpoint, waiter)
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
    /// finish cleanly or either side asked to close.
    func release(_ connection: UpstreamConnection, reusable: Bool) {
        eventLoop.assertInEventLoop()
        connection.handler.delegate = nil
        connection.handler.exchangeActive = false
        guard reusable, !closed, connection.channel.isActive else {
            connection.channel.close(promise: nil)
            return
        }
        connection.reused = true
        if let next = nextWaiter(connection.endpoint), let callback = next.callback {
            next.cancel()
            return callback(.success(connection))
        }
        connection.idleSince = .now()
        idle[connection.endpoint, default: []].append(connection)
        startSweeperIfNeeded()
    }

    /// Closes idle connections and refuses new exchanges (shutdown).
    func close() {
        eventLoop.assertInEventLoop()
        closed = true
        sweeper?.cancel()
        sweeper = nil
        let all = idle.values.flatMap { $0 }
        idle = [:]
        for connection in all { connection.channel.close(promise: nil) }
        let pending = waiters.values.flatMap { $0 }
        waiters = [:]
        for waiter in pending {
            let callback = waiter.callback
            waiter.cancel()
            callback?(.failure(ChannelError.ioOnClosedChannel))
        }
    }

    /// Connections open right now (idle and busy), for tests and metrics.
    var openConnections: Int { open.values.reduce(0, +) }

    // MARK: -

    /// An idle connection to `endpoint`, if there is one (the common case, taken without a callback).
    func takeIdle(_ endpoint: UpstreamEndpoint) -> UpstreamConnection? {
        eventLoop.assertInEventLoop()
        guard !closed else { return nil }
        // Most recently used first: its TCP and TLS state are warmest.
        while let connection = idle[endpoint]?.popLast() {
            if connection.channel.isActive { return connection }
        }
        return nil
    }

    private func connect(_ endpoint: UpstreamEndpoint, _ waiter: Waiter) {
        open[endpoint, default: 0] += 1
        let tls = endpoint.tls
        let host = endpoint.host
        // SNI carries names only; an IP address is checked against the certificate's IP SANs.
        let serverName: String? = IPAddress.parse(host) != nil ? nil : host
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls {
                        try sync.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    try sync.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
                    try sync.addHandler(UpstreamConnectionHandler())
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
                    self.connectionClosed(endpoint)
                    return deliver(.failure(ChannelError.inappropriateOperationForState))
                }
                let connection = UpstreamConnection(channel: channel, endpoint: endpoint, handler: handler)
                channel.closeFuture.assumeIsolated().whenComplete { _ in
                    self.connectionClosed(endpoint)
                    self.removeIdle(connection)
                }
                // The TLS handshake counts against the connect timeout too.
                let handshakeTimeout = self.eventLoop.assumeIsolated().scheduleTask(in: self.connectTimeout) {
                    channel.pipeline.fireErrorCaught(ChannelError.connectTimeout(self.connectTimeout))
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
                self.connectionClosed(endpoint)
                deliver(.failure(error))
            }
        }
    }

    private func connectionClosed(_ endpoint: UpstreamEndpoint) {
        let count = open[endpoint, default: 1] - 1
        open[endpoint] = count > 0 ? count : nil
        // A waiter gets a new connection in the freed slot.
        if !closed, let next = nextWaiter(endpoint) { connect(endpoint, next) }
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
        let interval = TimeAmount.nanoseconds(max(Self.idleTimeout.nanoseconds / 4, 1_000_000_000))
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        sweeper = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { task in
            loopBound.value.sweep(task)
        }
    }

    private func sweep(_ task: RepeatedTask) {
        let cutoff = NIODeadline.now() - Self.idleTimeout
        var expired: [UpstreamConnection] = []
        for (endpoint, list) in idle {
            let keep = list.filter { $0.idleSince > cutoff }
            if keep.count != list.count {
                expired.append(contentsOf: list.filter { $0.idleSince <= cutoff })
                idle[endpoint] = keep.isEmpty ? nil : keep
            }
        }
        for connection in expired { connection.channel.close(promise: nil) }
        if idle.isEmpty {
            task.cancel()
            sweeper = nil
        }
    }
}

/// Passes one exchange's response parts to its delegate and holds reads while the caller
/// cannot take more (backpressure for large responses).
private final class UpstreamConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    weak var delegate: (any UpstreamExchangeDelegate)?
    var exchangeActive = false
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    /// Until the connection is ready (TLS established): who to tell, or the outcome so far.
    private var onReady: ((_ error: (any Error)?) -> Void)?
    private var readyOutcome: Result<Void, any Error>?
    private var tlsEstablished = false

    /// Calls `body` once the connection can carry a request: at once without TLS, else when the
    /// handshake completes (or with the error that ended it).
    func whenReady(tls: Bool, _ body: @escaping (_ error: (any Error)?) -> Void) {
        if !tls || tlsEstablished { return body(nil) }
        if case .failure(let error) = readyOutcome { return body(error) }
        onReady = body
    }

    private func ready(_ error: (any Error)?) {
        if let error { readyOutcome = .failure(error) } else { tlsEstablished = true }
        let body = onReady
        onReady = nil
        body?(error)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event { ready(nil) }
        context.fireUserInboundEventTriggered(event)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func write(_ part: HTTPClientRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() { context?.flush() }

    func resumeReading() {
        guard pendingRead, let context else { return }
        pendingRead = false
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard exchangeActive, let delegate else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            // Interim responses (103 Early Hints and the like) are not passed on.
            if head.status.code >= 100 && head.status.code < 200 { return }
            delegate.upstreamHead(head)
        case .body(let buffer):
            delegate.upstreamBody(buffer)
        case .end:
            exchangeActive = false
            delegate.upstreamEnd()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if let delegate, exchangeActive, !delegate.acceptsResponseBytes {
            pendingRead = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if exchangeActive { delegate?.upstreamWritabilityChanged() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A peer that closes without close_notify is a close, as a plain FIN would be.
        let error: any Error =
            if let tlsError = error as? NIOSSLError, case .uncleanShutdown = tlsError { UpstreamClosedError() } else {
                error
            }
        if !tlsEstablished, onReady != nil { ready(error) }
        fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !tlsEstablished, onReady != nil || readyOutcome == nil { ready(UpstreamClosedError()) }
        fail(UpstreamClosedError())
        context.fireChannelInactive()
    }

    private func fail(_ error: any Error) {
        guard exchangeActive, let delegate else { return }
        exchangeActive = false
        self.delegate = nil
        delegate.upstreamFailed(error)
    }
}
