import AsyncHTTPClient
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
    private let forwarder: CalloutForwarder
    private let group: any EventLoopGroup
    private let logger: Logger
    private let limiter: ConnectionLimiter
    private let registry = ConnectionRegistry()
    private let state = NIOLockedValueBox(State())

    private struct State {
        var serverChannel: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>?
        var shuttingDown = false
    }

    public init(
        configuration: RuntimeConfiguration, tokens: any TokenSource, httpClient: HTTPClient,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger,
        observer: (any CalloutObserver)? = nil
    ) {
        let observer = observer ?? AccessLogObserver(logger: logger)
        self.configuration = configuration
        self.group = group
        self.logger = logger
        self.forwarder = CalloutForwarder(
            configuration: configuration, tokens: tokens, httpClient: httpClient, logger: logger, observer: observer)
        self.limiter = ConnectionLimiter(
            limit: { configuration.current.config.proxy.maxConnections }, onRejected: { observer.connectionRejected() })
    }

    /// Open client connections right now.
    public var openConnections: Int { limiter.open.load(ordering: .relaxed) }

    /// Binds the listener and returns its address (port 0 in the config gives a free port).
    @discardableResult
    public func bind() async throws -> SocketAddress {
        let settings = configuration.current.config.proxy
        let limiter = self.limiter
        let limits = {
            var l = NIOHTTPDecoderLimitConfiguration()
            l.maxHeaderListSize = settings.maxHeaderBytes
            l.maxHeaderFieldSize = settings.maxHeaderBytes
            l.maxHeaderFieldCount = 512
            return l
        }()
        let headTimeout = TimeAmount.seconds(Int64(settings.headerReadTimeoutSeconds))
        let idleTimeout = TimeAmount.seconds(Int64(settings.idleTimeoutSeconds))
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
            .bind(host: settings.listen.host, port: settings.listen.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard limiter.admit(channel) else {
                        channel.close(promise: nil)
                        throw ChannelError.ioOnClosedChannel
                    }
                    let sync = channel.pipeline.syncOperations
                    try sync.configureHTTPServerPipeline(
                        withPipeliningAssistance: true, withErrorHandling: false, withOutboundHeaderValidation: true,
                        withEncoderConfiguration: .init(), withDecoderLimitConfiguration: limits)
                    try sync.addHandler(MalformedRequestHandler(maxHeaderBytes: settings.maxHeaderBytes))
                    try sync.addHandler(ConnectionTimeoutHandler(headTimeout: headTimeout, idleTimeout: idleTimeout))
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(
                        wrappingChannelSynchronously: channel,
                        configuration: .init(backPressureStrategy: .init(lowWatermark: 2, highWatermark: 16)))
                }
            }
        state.withLockedValue { $0.serverChannel = channel }
        guard let address = channel.channel.localAddress else { throw ChannelError.unknownLocalAddress }
        logger.debug("listening", metadata: ["address": "\(address)"])
        return address
    }

    /// Serves connections until ``shutdown()``; then waits for in-flight callouts, up to the grace period.
    public func run() async throws {
        guard let serverChannel = state.withLockedValue({ $0.serverChannel }) else {
            throw ChannelError.inappropriateOperationForState
        }
        let forwarder = self.forwarder
        let registry = self.registry
        try await withThrowingDiscardingTaskGroup { group in
            try await serverChannel.executeThenClose { inbound in
                do {
                    for try await connection in inbound {
                        group.addTask {
                            await HTTPConnection(channel: connection, forwarder: forwarder, registry: registry).run()
                        }
                    }
                } catch {
                    // Accept errors end the loop; connections already accepted finish.
                }
            }
        }
    }

    /// Stops accepting; idle connections close now, busy ones after their current callout, and
    /// any still open after `shutdown_grace_seconds` are closed.
    public func shutdown() {
        let channel = state.withLockedValue { s -> (any Channel)? in
            s.shuttingDown = true
            return s.serverChannel?.channel
        }
        channel?.close(promise: nil)
        registry.drain()
        let grace = configuration.current.config.proxy.shutdownGraceSeconds
        let registry = self.registry
        group.next().scheduleTask(in: .seconds(Int64(grace))) { registry.closeAll() }
    }
}
