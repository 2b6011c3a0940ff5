import AsyncHTTPClient
import CalloutCore
import CalloutTokenStore
import CalloutTokens
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals

/// The whole proxy wired together: configuration, keys, token service, upstream client, the
/// data-plane listener, the admin listener, metrics and reload. `serve`, `demo` and the
/// end-to-end tests all start it this way.
public final class CalloutProxyService: Sendable {
    public let runtime: RuntimeConfiguration
    public let tokens: TokenService
    public let httpClient: HTTPClient
    public let proxy: ProxyServer
    public let listenAddress: SocketAddress
    public let metrics: ProxyMetrics
    public let readiness: Readiness
    /// The access log file's writer (`access_log = "<path>"`), else nil.
    public let accessLogFile: LogLineWriter?
    public let reloader: ConfigReloader
    /// `nil` when `admin_listen = "off"`.
    public let admin: AdminServer?
    public let adminAddress: SocketAddress?
    /// `[token_store]` running, else `nil`.
    public let tokenStore: TokenStoreService?
    let logger: Logger

    /// Loads nothing from disk itself: pass a validated configuration and its loaded materials.
    ///
    /// - Parameters:
    ///   - metrics: where metrics go; each service gets its own registry unless one is passed.
    ///   - source: where ``ConfigReloader`` reads the configuration again (SIGHUP, `POST /reload`).
    ///   - accessLogFormat: the format of an `access_log` file.
    public static func start(
        config: ProxyConfig, materials: CredentialMaterials, logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        observer: (any CalloutObserver)? = nil, metrics: ProxyMetrics = ProxyMetrics(),
        source: ConfigSource? = nil, accessLogFormat: LogFormat = .json,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> CalloutProxyService {
        let runtime = try RuntimeConfiguration(config, materials: materials)
        let settings = config.proxy
        let readiness = Readiness()
        let httpClient = IdentityProviderHTTPClient.make(settings: settings, materials: materials, eventLoopGroup: group)
        var accessLogFile: LogLineWriter? = nil
        var tokenStore: TokenStoreService? = nil
        do {
            let accessLog: AccessLogOutput
            switch settings.accessLog {
            case .off: accessLog = .off
            case .standardError: accessLog = .processLog
            case .file(let path):
                let writer = try LogLineWriter(.file(path))
                accessLogFile = writer
                accessLog = .writer(writer, accessLogFormat)
            }
            metrics.countDroppedLogLines { [accessLogFile] in
                LogSetup.standardError.droppedLines + (accessLogFile?.droppedLines ?? 0)
            }
            let cache = TokenCache(
                settings: TokenCacheSettings(
                    maxEntries: settings.maxCachedTokens, refreshAheadRatio: settings.tokenRefreshAheadRatio,
                    expirySkewSeconds: Double(settings.tokenExpirySkewSeconds),
                    minRefreshIntervalSeconds: Double(settings.minTokenRefreshIntervalSeconds)),
                notices: { notice in
                    logger.warning(
                        "short token lifetime: \(notice)",
                        metadata: ["external_credential": .string(notice.externalCredential)])
                    metrics.shortTokenLifetime(externalCredential: notice.externalCredential)
                })
            let client = TokenEndpointClient(
                httpClient: httpClient,
                limits: .init(
                    timeout: .seconds(settings.requestTimeoutSeconds),
                    defaultLifetimeSeconds: settings.defaultTokenLifetimeSeconds),
                logger: logger,
                onFetch: { event in
                    let name = ProxyMetrics.externalCredentialLabel(
                        event.externalCredential, in: runtime.current.config)
                    metrics.tokenRequested(externalCredential: name, outcome: event.outcome, duration: event.duration)
                    if event.outcome == "success" { readiness.tokenFetched(externalCredential: name) }
                })
            if let storeConfig = config.tokenStore {
                metrics.tokenStoreConfigured()
                tokenStore = try await TokenStoreService.start(
                    storeConfig, cache: cache.settings, environment: environment,
                    eventLoopGroup: group, logger: logger,
                    events: { event in
                        metrics.tokenStore(event)
                        TokenStoreLog.record(event, logger: logger)
                    })
            }
            let tokens = TokenService(
                cache: cache, client: client, materials: { runtime.current.materials },
                settings: { runtime.current.config.proxy }, logger: logger, shared: tokenStore?.shared)
            let observers: [any CalloutObserver] = [
                observer ?? AccessLogObserver(logger: logger, output: accessLog),
                MetricsObserver(metrics: metrics, configuration: runtime),
            ]
            let proxy = ProxyServer(
                configuration: runtime, tokens: tokens, group: group, logger: logger,
                observer: CompositeObserver(observers: observers))
            let reloader = ConfigReloader(
                source: source, runtime: runtime, cache: cache, metrics: metrics, logger: logger,
                applied: { tokens.discoverTokenEndpoints($0) })
            metrics.configurationInstalled(generation: runtime.current.generation)
            metrics.readUpstreamConnections { proxy.upstreamConnectionCount }
            let address = try await ListenError.naming("proxy.listen", settings.listen) { try await proxy.bind() }
            var admin: AdminServer? = nil
            var adminAddress: SocketAddress? = nil
            if let adminListen = settings.adminListen {
                let api = AdminAPI(
                    runtime: runtime, tokens: tokens, metrics: metrics, reloader: reloader, readiness: readiness,
                    openConnections: { proxy.openConnections })
                let server = AdminServer(api: api, group: group, logger: logger)
                do {
                    adminAddress = try await ListenError.naming("proxy.admin_listen", adminListen) {
                        try await server.bind(adminListen)
                    }
                } catch {
                    proxy.shutdown()
                    throw error
                }
                admin = server
                if settings.adminTokenSHA256 == nil, !AdminAccess.isLoopback(adminAddress?.ipAddress) {
                    logger.warning(
                        "admin_listen is not a loopback address and admin_token_sha256 is not set: only loopback peers will be answered"
                    )
                }
            }
            readiness.setListening()
            tokens.discoverTokenEndpoints(config)
            return CalloutProxyService(
                runtime: runtime, tokens: tokens, httpClient: httpClient, proxy: proxy, listenAddress: address,
                metrics: metrics, readiness: readiness, accessLogFile: accessLogFile, reloader: reloader, admin: admin,
                adminAddress: adminAddress, tokenStore: tokenStore, logger: logger)
        } catch {
            await tokenStore?.close()
            accessLogFile?.close()
            try? await httpClient.shutdown()
            throw error
        }
    }

    private init(
        runtime: RuntimeConfiguration, tokens: TokenService, httpClient: HTTPClient, proxy: ProxyServer,
        listenAddress: SocketAddress, metrics: ProxyMetrics, readiness: Readiness, accessLogFile: LogLineWriter?,
        reloader: ConfigReloader, admin: AdminServer?, adminAddress: SocketAddress?, tokenStore: TokenStoreService?,
        logger: Logger
    ) {
        self.tokenStore = tokenStore
        self.runtime = runtime
        self.tokens = tokens
        self.httpClient = httpClient
        self.proxy = proxy
        self.listenAddress = listenAddress
        self.metrics = metrics
        self.readiness = readiness
        self.accessLogFile = accessLogFile
        self.reloader = reloader
        self.admin = admin
        self.adminAddress = adminAddress
        self.logger = logger
    }

    /// `http://127.0.0.1:PORT`
    public var proxyURL: String { Self.url(listenAddress) }

    /// `http://127.0.0.1:PORT` of the admin listener, when it is on.
    public var adminURL: String? { adminAddress.map(Self.url) }

    static func url(_ address: SocketAddress) -> String {
        let host = address.ipAddress ?? "127.0.0.1"
        let port = address.port ?? 0
        return host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)"
    }

    /// Serves callouts and admin requests until ``beginShutdown()``; returns once in-flight
    /// callouts are done (within `shutdown_grace_seconds`). The admin listener stays up while
    /// the data plane drains (`/readyz` answers 503) and closes after it.
    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            if let admin { group.addTask { try await admin.run() } }
            do {
                try await proxy.run()
            } catch {
                admin?.shutdown()
                throw error
            }
            admin?.shutdown()
            try await group.waitForAll()
        }
    }

    /// Stops accepting callouts: idle connections close at once, busy ones after their current
    /// callout, and any left after `shutdown_grace_seconds` are closed. `run()` then returns.
    public func beginShutdown() {
        guard !readiness.isDraining else { return }
        readiness.setDraining()
        logger.info(
            "draining",
            metadata: [
                "open_connections": .stringConvertible(proxy.openConnections),
                "grace_seconds": .stringConvertible(runtime.current.config.proxy.shutdownGraceSeconds),
            ])
        proxy.shutdown()
    }

    /// Releases the upstream connection pool and writes and closes the access log file. Call
    /// after `run()` returned (or instead of it).
    public func close() async {
        tokens.discovery.shutdown()
        await tokenStore?.close()
        try? await httpClient.shutdown()
        accessLogFile?.close()
    }

    /// Opens the access log file's path again (SIGUSR1, after logrotate moved the file away).
    public func reopenAccessLog() throws(LogFileError) {
        try accessLogFile?.reopen()
    }

    /// The data plane and the admin listener as swift-service-lifecycle services, for a
    /// `ServiceGroup` (list them in this order: on graceful shutdown the group stops the data
    /// plane first, so the admin listener answers until the drain is over).
    public var services: [any Service] {
        var list: [any Service] = []
        if let admin { list.append(AdminService(admin: admin)) }
        list.append(DataPlaneService(service: self))
        return list
    }

    /// A `ServiceGroup` running ``services``: a graceful shutdown (one of `signals`, or
    /// `triggerGracefulShutdown()`) drains the data plane, then closes the admin listener. If
    /// either ends on its own, the group shuts the other down. A backstop cancels whatever is
    /// left 10 s after `shutdown_grace_seconds`.
    public func serviceGroup(gracefulShutdownSignals signals: [UnixSignal], logger: Logger) -> ServiceGroup {
        var configuration = ServiceGroupConfiguration(
            services: services.map {
                .init(
                    service: $0, successTerminationBehavior: .gracefullyShutdownGroup,
                    failureTerminationBehavior: .gracefullyShutdownGroup)
            },
            gracefulShutdownSignals: signals, logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(
            runtime.current.config.proxy.shutdownGraceSeconds + 10)
        return ServiceGroup(configuration: configuration)
    }

    /// Runs ``serviceGroup(gracefulShutdownSignals:logger:)`` with SIGTERM and SIGINT until it is
    /// drained (the `serve` command).
    public func runUntilSignalled(logger: Logger) async throws {
        try await serviceGroup(gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
    }
}

/// The data plane as a `Service`: graceful shutdown drains it.
struct DataPlaneService: Service {
    let service: CalloutProxyService

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await service.proxy.run()
        } onGracefulShutdown: {
            service.beginShutdown()
        }
    }
}

/// The admin listener as a `Service`.
struct AdminService: Service {
    let admin: AdminServer

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await admin.run()
        } onGracefulShutdown: {
            admin.shutdown()
        }
    }
}
