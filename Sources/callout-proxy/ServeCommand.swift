import ArgumentParser
import CalloutCore
import CalloutServer
import CalloutTokens
import Dispatch
import Foundation
import Logging

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
        abstract: "Run the proxy: take callouts, inject tokens, forward over HTTPS.")

    @OptionGroup var options: ConfigOption
    @OptionGroup var log: LogOptions

    func run() async throws {
        let logger = log.bootstrap()
        let (config, materials) = try loadOrExit(options.path)
        let service = try await CalloutProxyService.start(config: config, materials: materials, logger: logger)
        logger.info(
            "callout-proxy started",
            metadata: [
                "version": "\(CalloutProxyVersion.current)", "listen": "\(service.proxyURL)",
                "named_credentials": "\(config.namedCredentials.count)",
                "external_credentials": "\(config.externalCredentials.count)",
                "principals": "\(config.externalCredentials.reduce(0) { $0 + $1.principals.count })",
            ])
        let signals = ShutdownSignals { signal in
            logger.info(
                "shutting down",
                metadata: ["signal": "\(signal)", "grace_seconds": "\(config.proxy.shutdownGraceSeconds)"])
            service.beginShutdown()
        }
        try await service.run()
        await service.close()
        signals.cancel()
        logger.info("callout-proxy stopped")
    }
}

/// Loads and validates the configuration and its keys, or prints every problem and exits 1.
func loadOrExit(_ path: String) throws -> (ProxyConfig, CredentialMaterials) {
    var stderr = StandardError()
    do {
        let config = try ConfigLoader.load(path: path)
        return (config, try CredentialMaterials.load(config))
    } catch {
        for issue in error.issues { print(issue.description, to: &stderr) }
        print("\(error.issues.count) problem\(error.issues.count == 1 ? "" : "s") found", to: &stderr)
        throw ExitCode(1)
    }
}

/// Calls `handler` once on SIGTERM or SIGINT (the default actions are suppressed meanwhile).
final class ShutdownSignals: @unchecked Sendable {
    private var sources: [any DispatchSourceSignal] = []

    init(handler: @escaping @Sendable (String) -> Void) {
        let once = OnceFlag()
        for (number, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                if once.claim() { handler(name) } else { exit(130) }
            }
            source.resume()
            sources.append(source)
        }
    }

    func cancel() {
        for source in sources { source.cancel() }
    }
}

final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    func claim() -> Bool {
        lock.withLock {
            defer { done = true }
            return !done
        }
    }
}
