import CalloutCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The admin listener (`admin_listen`): small HTTP/1.1 requests answered by ``AdminAPI``.
public final class AdminServer: Sendable {
    /// Larger admin request bodies are refused (413).
    static let maxBodyBytes = 64 * 1024

    private let api: AdminAPI
    private let group: any EventLoopGroup
    private let logger: Logger
    private let registry = ConnectionRegistry()
    private let state = NIOLockedValueBox<
        NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>?
    >(nil)

    init(api: AdminAPI, group: any EventLoopGroup, logger: Logger) {
        self.api = api
        self.group = group
        self.logger = logger
    }

    /// Binds and returns the address (port 0 gives a free port). The data plane's header size
    /// and time limits apply, and at most `admin_max_connections` connections are open at once.
    func bind(_ address: HostPort) async throws -> SocketAddress {
        let settings = api.runtime.current.config.proxy
        let limiter = ConnectionLimiter(limit: { settings.adminMaxConnections })
        let limits = NIOHTTPDecoderLimitConfiguration.heads(maxHeaderBytes: settings.maxHeaderBytes)
        let headerRead = TimeAmount.seconds(Int64(settings.headerReadTimeoutSeconds))
        let idle = TimeAmount.seconds(Int64(settings.idleTimeoutSeconds))
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: address.host, port: address.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try limiter.admitOrClose(channel)
                    let sync = channel.pipeline.syncOperations
                    try sync.configureHTTPServerPipeline(
                        withPipeliningAssistance: true, withErrorHandling: true, withOutboundHeaderValidation: true,
                        withEncoderConfiguration: .init(), withDecoderLimitConfiguration: limits)
                    try sync.addHandler(AdminTimeoutHandler(headerRead: headerRead, idle: idle))
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(
                        wrappingChannelSynchronously: channel)
                }
            }
        state.withLockedValue { $0 = channel }
        guard let bound = channel.channel.localAddress else { throw ChannelError.unknownLocalAddress }
        return bound
    }

    /// Serves until ``shutdown()``.
    public func run() async throws {
        guard let serverChannel = state.withLockedValue({ $0 }) else {
            throw ChannelError.inappropriateOperationForState
        }
        let api = self.api
        let logger = self.logger
        let registry = self.registry
        try await withThrowingDiscardingTaskGroup { group in
            try await serverChannel.executeThenClose { inbound in
                do {
                    for try await connection in inbound {
                        group.addTask { await Self.serve(connection, api: api, registry: registry, logger: logger) }
                    }
                } catch {
                    // The listener closed.
                }
            }
        }
    }

    /// Stops accepting; idle admin connections close now, busy ones after their current request.
    public func shutdown() {
        state.withLockedValue { $0 }?.channel.close(promise: nil)
        registry.drain()
    }

    private static func serve(
        _ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, api: AdminAPI,
        registry: ConnectionRegistry, logger: Logger
    ) async {
        let peer = connection.channel.remoteAddress?.ipAddress
        registry.add(connection.channel)
        defer { registry.remove(connection.channel) }
        if registry.isDraining {
            // Closed through the async channel: dropping it unfinished is a NIO precondition failure.
            try? await connection.executeThenClose { _, _ in }
            return
        }
        do {
            try await connection.executeThenClose { inbound, outbound in
                var head: HTTPRequestHead? = nil
                var body: [UInt8] = []
                var tooLarge = false
                for try await part in inbound {
                    switch part {
                    case .head(let h):
                        _ = registry.setBusy(connection.channel, true)
                        head = h
                        body = []
                        tooLarge = false
                    case .body(let chunk):
                        if body.count + chunk.readableBytes > maxBodyBytes {
                            tooLarge = true
                        } else {
                            body += chunk.readableBytesView
                        }
                    case .end:
                        guard let h = head else { continue }
                        let response: AdminResponse
                        if tooLarge {
                            response = .problem(
                                Problem(
                                    status: 413, code: "request_too_large", title: "Request body too large",
                                    detail: "Admin request bodies are limited to \(maxBodyBytes) bytes."))
                        } else {
                            let request = AdminRequest(
                                method: h.method.rawValue, target: h.uri,
                                headers: h.headers.map { ($0.name, $0.value) }, body: body, peer: peer)
                            response = await api.handle(request)
                        }
                        logger.debug(
                            "admin request",
                            metadata: [
                                "method": "\(h.method.rawValue)",
                                "path": "\(CallerText.printable(String(h.uri.prefix { $0 != "?" })))",
                                "status": "\(response.status)",
                            ])
                        let draining = !registry.setBusy(connection.channel, false)
                        try await write(response, head: h, to: outbound, close: draining)
                        if !h.isKeepAlive || draining { return }
                        head = nil
                    }
                }
            }
        } catch {
            logger.trace("admin connection ended", metadata: ["error": "\(type(of: error))"])
        }
    }

    private static func write(
        _ response: AdminResponse, head: HTTPRequestHead,
        to outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, close: Bool
    ) async throws {
        let bytes = ByteBuffer(string: response.body)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: String(bytes.readableBytes))
        headers.add(name: "Cache-Control", value: "no-store")
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        if !head.isKeepAlive || close { headers.add(name: "Connection", value: "close") }
        try await outbound.write(
            .head(
                HTTPResponseHead(
                    version: head.version, status: HTTPResponseStatus(statusCode: response.status), headers: headers)))
        if head.method != .HEAD { try await outbound.write(.body(.byteBuffer(bytes))) }
        try await outbound.write(.end(nil))
    }
}
