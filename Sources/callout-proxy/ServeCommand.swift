import ArgumentParser
import CalloutCore
import CalloutServer
import CalloutTokens
import Foundation
import Logging
import UnixSignals

extension Logger.Level: @retroactive ExpressibleByArgument {}
extension LogFormat: ExpressibleByArgument {}

/// `--log-level` and `--log-format`, shared by commands that run servers.
struct LogOptions: ParsableArguments {
    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "json or human (default: human on a terminal, else json).")
    var logFormat: LogFormat?

    func bootstrap() -> Logger {
        LogSetup.bootstrap(level: logLevel, format: logFormat ?? .automatic)
        return Logger(label: "callout-proxy")
    }
}

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the proxy: take callouts, inject tokens, forward over HTTPS.",
        discussion: """
            Signals: SIGTERM or SIGINT drain and exit 0 (idle connections close at once, busy ones \
            after their callout, all after shutdown_grace_seconds), also during start-up; SIGHUP \
            reloads the configuration and keys (an invalid file is refused and the old configuration \
            keeps serving); SIGUSR1 opens the access_log file's path again (after logrotate moved the \
            file). The configuration file and every key, certificate and CA file it names are followed \
            on disk, symlinks included (a Kubernetes ConfigMap or Secret update): a change is reloaded \
            the same way within a few seconds, unless --no-watch is given.
            """)

    @OptionGroup var options: ConfigOption
    @OptionGroup var log: LogOptions

    @Flag(help: "Do not follow the configuration and key files on disk (reload only on SIGHUP or POST /reload).")
    var noWatch = false

    func run() async throws {
        // Before any slow start-up work: a SIGTERM from now on stops the proxy cleanly.
        let shutdownSignals = await ShutdownSignalHandler()
        defer { shutdownSignals.cancel() }
        let logger = log.bootstrap()
        defer { LogSetup.flush() }
        let path = options.path
        let (config, materials) = try loadOrExit(options)
        if let signal = shutdownSignals.requestedDuringStartUp {
            logger.notice("stopped during start-up", metadata: ["signal": "\(signal)"])
            return
        }
        for warning in config.warnings + KeyFilePermissions.warnings(config) {
            logger.warning("\(warning.description)")
        }
        let metrics = ProxyMetrics()
        metrics.bootstrapMetricsSystem()
        let service: CalloutProxyService
        do {
            service = try await CalloutProxyService.start(
                config: config, materials: materials, logger: logger, metrics: metrics, source: .file(path),
                accessLogFormat: log.logFormat ?? .json)
        } catch let error as ListenError {
            logger.error("\(error.description)")
            throw ExitCode(1)
        }
        // SIGHUP reloads, SIGUSR1 reopens the access log: trapped before "started" is logged.
        let operatorSignals = await UnixSignalsSequence(trapping: .sighup, .sigusr1)
        logger.info(
            "callout-proxy started",
            metadata: [
                "version": "\(CalloutProxyVersion.current)", "commit": "\(CalloutProxyVersion.commit)",
                "listen": "\(service.proxyURL)",
                "admin": "\(service.adminURL ?? "off")", "config": "\(path)",
                "named_credentials": .stringConvertible(config.namedCredentials.count),
                "external_credentials": .stringConvertible(config.externalCredentials.count),
                "principals": .stringConvertible(config.externalCredentials.reduce(0) { $0 + $1.principals.count }),
                "certificates": .stringConvertible(config.certificates.count),
                "callers": .stringConvertible(config.callers.count),
            ])
        let operatorSignalTask = Task {
            for await signal in operatorSignals {
                if signal == .sighup {
                    _ = service.reloader.reload(trigger: "SIGHUP")
                } else {
                    do {
                        try service.reopenAccessLog()
                    } catch {
                        logger.warning("access log not reopened", metadata: ["error": "\(error)"])
                    }
                }
            }
        }
        defer { operatorSignalTask.cancel() }
        // Configuration and key files followed on disk (a Kubernetes volume update sends no signal).
        var watcher: Task<Void, Never>? = nil
        if !noWatch {
            let files = ConfigWatcher(
                configFile: path, config: { service.runtime.current.config },
                reload: { service.reloader.reload(trigger: $0) }, logger: logger)
            watcher = Task { await files.run() }
        }
        defer { watcher?.cancel() }
        let group = service.serviceGroup(gracefulShutdownSignals: [], logger: logger)
        shutdownSignals.startedServing { signal in
            logger.info("stopping", metadata: ["signal": "\(signal)"])
            Task { await group.triggerGracefulShutdown() }
        }
        do {
            try await group.run()
        } catch {
            logger.error("stopped with an error", metadata: ["error": "\(type(of: error))"])
            await service.close()
            throw ExitCode(1)
        }
        await service.close()
        logger.info("callout-proxy stopped")
    }
}

/// Loads and validates the configuration and its keys, or prints every problem and exits 1.
func loadOrExit(_ options: ConfigOption) throws -> (ProxyConfig, CredentialMaterials) {
    var stderr = StandardError()
    do {
        let config = try options.load()
        return (config, try CredentialMaterials.load(config))
    } catch {
        for issue in error.issues { print(issue.description, to: &stderr) }
        print("\(error.issues.count) problem\(error.issues.count == 1 ? "" : "s") found", to: &stderr)
        throw ExitCode(1)
    }
}
