import AsyncHTTPClient
import CalloutCore
import CalloutTokens
import Logging
import NIOCore
import NIOPosix

/// The whole proxy wired together: configuration, keys, token service, upstream client and
/// listener. `serve`, `demo` and the end-to-end tests all start it this way.
public final class CalloutProxyService: Sendable {
    public let runtime: RuntimeConfiguration
    public let tokens: TokenService
    public let httpClient: HTTPClient
    public let proxy: ProxyServer
    public let listenAddress: SocketAddress
    let logger: Logger

    /// Loads nothing from disk itself: pass a validated configuration and its loaded materials.
    public static func start(
        config: ProxyConfig, materials: CredentialMaterials, logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        observer: (any CalloutObserver)? = nil
    ) async throws -> CalloutProxyService {
        let runtime = try RuntimeConfiguration(config, materials: materials)
        let settings = config.proxy
        let httpClient = try UpstreamClient.make(settings: settings, eventLoopGroup: group)
        do {
            let cache = TokenCache(
                settings: TokenCacheSettings(
                    maxEntries: settings.maxCachedTokens, refreshAheadRatio: settings.tokenRefreshAheadRatio,
                    expirySkewSeconds: Double(settings.tokenExpirySkewSeconds)))
            let client = TokenEndpointClient(
                httpClient: httpClient,
                limits: .init(
                    timeout: .seconds(settings.requestTimeoutSeconds),
                    defaultLifetimeSeconds: settings.defaultTokenLifetimeSeconds),
                logger: logger)
            let tokens = TokenService(
                cache: cache, client: client, materials: { runtime.current.materials },
                settings: { runtime.current.config.proxy }, logger: logger)
            let proxy = ProxyServer(
                configuration: runtime, tokens: tokens, httpClient: httpClient, group: group, logger: logger,
                observer: observer)
            let address = try await proxy.bind()
            return CalloutProxyService(
                runtime: runtime, tokens: tokens, httpClient: httpClient, proxy: proxy, listenAddress: address,
                logger: logger)
        } catch {
            try? await httpClient.shutdown()
            throw error
        }
    }

    private init(
        runtime: RuntimeConfiguration, tokens: TokenService, httpClient: HTTPClient, proxy: ProxyServer,
        listenAddress: SocketAddress, logger: Logger
    ) {
        self.runtime = runtime
        self.tokens = tokens
        self.httpClient = httpClient
        self.proxy = proxy
        self.listenAddress = listenAddress
        self.logger = logger
    }

    /// `http://127.0.0.1:PORT`
    public var proxyURL: String {
        let host = listenAddress.ipAddress ?? "127.0.0.1"
        let port = listenAddress.port ?? 0
        return host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)"
    }

    /// Serves until ``shutdown()`` is called, then lets in-flight callouts finish within
    /// `shutdown_grace_seconds` and closes the upstream client.
    public func run() async throws {
        try await proxy.run()
    }

    /// Stops accepting new connections; `run()` returns once in-flight callouts are done.
    public func beginShutdown() {
        proxy.shutdown()
    }

    /// Releases the upstream connection pool. Call after `run()` returned (or instead of it).
    public func close() async {
        try? await httpClient.shutdown()
    }
}
