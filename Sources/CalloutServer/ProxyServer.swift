import CalloutCore
import CalloutTokens
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The data-plane listener: accepts connections and serves callouts until shut down.
public final class ProxyServer: Sendable {
    public let configuration: RuntimeConfiguration
    private let services: CalloutServices
    private let group: any EventLoopGroup
    private let logger: Logger
    private let limiter: ConnectionLimiter
    let connections: ConnectionTracker
    let pools: UpstreamPools
    private let observer: any CalloutObserver
    private let state = NIOLockedValueBox(State())

    private struct State {
        var serverChannel: (any Channel)?
        var trimmer: MemoryTrimmer?
    }

    public init(
        configuration: RuntimeConfiguration, tokens: any TokenSource,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger,
        observer: (any CalloutObserver)? = nil
    ) {
        let observer = observer ?? AccessLogObserver(logger: logger)
        self.configuration = configuration
        self.group = group
        self.logger = logger
        self.observer = observer
        let pools = UpstreamPools(logger: logger, observer: observer)
        self.pools = pools
        let connections = ConnectionTracker(group: group)
        self.connections = connections
        configuration.whenReplaced { pools.retire(keeping: $0.endpoints) }
        self.services = CalloutServices(
            configuration: configuration, tokens: tokens, logger: logger, observer: observer,
            connections: connections,
            pools: pools)
        self.limiter = ConnectionLimiter(
            limit: { configuration.current.config.proxy.maxConnections }, onRejected: { observer.connectionRejected() })
    }

    /// Open client connections right now.
    public var openConnections: Int { limiter.open.load(ordering: .relaxed) }

    /// Upstream connections open or opening right now, all event loops together (no waiting).
    public var upstreamConnectionCount: Int { pools.budget.total }

    /// Open upstream connections right now (idle in the pool or serving a callout).
    public func openUpstreamConnections() async -> Int { await pools.openConnections() }

    /// Binds the listener and returns its address (port 0 in the config gives a free port).
    @discardableResult
    public func bind() async throws -> SocketAddress {
        let settings = configuration.current.config.proxy
        let limiter = self.limiter
        let services = self.services
        let limits = NIOHTTPDecoderLimitConfiguration.heads(maxHeaderBytes: settings.maxHeaderBytes)
        let headTimeout = TimeAmount.seconds(Int64(settings.headerReadTimeoutSeconds))
        let idleTimeout = TimeAmount.seconds(Int64(settings.idleTimeoutSeconds))
        let bodyDeadline = BodyDeadline(
            timeout: .seconds(Int64(settings.requestBodyTimeoutSeconds)),
            minBytesPerSecond: settings.minRequestBodyRateBytesPerSecond)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try limiter.admitOrClose(channel)
                    let sync = channel.pipeline.syncOperations
                    try sync.configureHTTPServerPipeline(
                        withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
                        withEncoderConfiguration: .init(), withDecoderLimitConfiguration: limits)
                    try sync.addHandler(
                        CalloutHandler(
                            services: services, headTimeout: headTimeout, idleTimeout: idleTimeout,
                            bodyDeadline: bodyDeadline, maxHeaderBytes: settings.maxHeaderBytes))
                }
            }
            .bind(host: settings.listen.host, port: settings.listen.port).get()
        // Last on the listener's pipeline: where the bootstrap reports a connection whose setup failed.
        try await channel.pipeline.addHandler(AcceptFailureHandler(logger: logger, observer: observer)).get()
        let open = limiter.open
        let trimmer = MemoryTrimmer(eventLoop: group.next()) { open.load(ordering: .relaxed) }
        state.withLockedValue {
            $0.serverChannel = channel
            $0.trimmer = trimmer
        }
        guard let address = channel.localAddress else { throw ChannelError.unknownLocalAddress }
        logger.debug("listening", metadata: ["address": "\(address)"])
        return address
    }

    /// Serves connections until ``shutdown()``; then waits for in-flight callouts, up to the grace period.
    public func run() async throws {
        guard let serverChannel = state.withLockedValue({ $0.serverChannel }) else {
            throw ChannelError.inappropriateOperationForState
        }
        try? await serverChannel.closeFuture.get()
        // Connections drain (see shutdown()); the last one to close ends the wait.
        while connections.count > 0 {
            try? await Task.sleep(for: .milliseconds(20))
        }
        pools.closeAll()
    }

    /// Stops accepting; idle connections close now, busy ones after their current callout, and
    /// any still open after `shutdown_grace_seconds` are closed.
    public func shutdown() {
        let (channel, trimmer) = state.withLockedValue { ($0.serverChannel, $0.trimmer) }
        trimmer?.cancel()
        channel?.close(promise: nil)
        connections.drain()
        let grace = configuration.current.config.proxy.shutdownGraceSeconds
        let connections = self.connections
        group.next().scheduleTask(in: .seconds(Int64(grace))) { connections.closeAll() }
    }
}
