import CalloutCore
import CalloutTokens
import Foundation
import Logging
import NIOConcurrencyHelpers

/// Where a reload reads the configuration from.
public struct ConfigSource: Sendable {
    public let description: String
    let load: @Sendable () throws(ConfigError) -> ProxyConfig

    public init(description: String, load: @escaping @Sendable () throws(ConfigError) -> ProxyConfig) {
        self.description = description
        self.load = load
    }

    /// The file `serve` started from, read again on every reload.
    public static func file(_ path: String) -> ConfigSource {
        ConfigSource(description: path) { () throws(ConfigError) -> ProxyConfig in try ConfigLoader.load(path: path) }
    }
}

/// What one reload did.
public struct ReloadOutcome: Sendable {
    /// The generation now serving; unchanged when the reload failed.
    public var generation: Int
    public var applied: Bool
    /// Why the new configuration was refused (empty when applied).
    public var errors: [ConfigIssue]
    /// Settings that did not take effect (listen addresses) or take effect only on restart.
    public var warnings: [String]
    /// External credentials whose cached tokens were dropped, and how many entries each lost.
    public var droppedTokens: [(externalCredential: String, entries: Int)]
}

/// Re-reads the configuration and keys, validates them, and swaps them in atomically: requests
/// in flight finish on the snapshot they started with, new ones use the new one. Cached tokens
/// of external credentials whose token-relevant settings changed are dropped; the rest are kept.
/// An invalid file changes nothing and every problem is logged and returned.
public final class ConfigReloader: Sendable {
    public let source: ConfigSource?
    private let runtime: RuntimeConfiguration
    private let cache: TokenCache
    private let metrics: ProxyMetrics
    private let logger: Logger
    private let environment: @Sendable () -> [String: String]
    /// Told about every configuration a reload installed (token endpoint discovery runs again).
    private let applied: @Sendable (ProxyConfig) -> Void
    /// One reload at a time.
    private let lock = NIOLock()
    private let refusal = NIOLockedValueBox<[ConfigIssue]>([])

    /// Why the last reload was refused; empty when it was applied (or none was tried).
    /// `/readyz` shows it: the proxy stays ready on its previous configuration.
    public var lastRefusal: [ConfigIssue] { refusal.withLockedValue { $0 } }

    public init(
        source: ConfigSource?, runtime: RuntimeConfiguration, cache: TokenCache, metrics: ProxyMetrics,
        logger: Logger,
        environment: @escaping @Sendable () -> [String: String] = { ProcessInfo.processInfo.environment },
        applied: @escaping @Sendable (ProxyConfig) -> Void = { _ in }
    ) {
        self.applied = applied
        self.source = source
        self.runtime = runtime
        self.cache = cache
        self.metrics = metrics
        self.logger = logger
        self.environment = environment
    }

    /// Reloads from ``source``. `trigger` names what asked (`SIGHUP`, `admin`) for the log.
    @discardableResult
    public func reload(trigger: String) -> ReloadOutcome {
        lock.withLock { reloadLocked(trigger: trigger) }
    }

    private func reloadLocked(trigger: String) -> ReloadOutcome {
        let current = runtime.current
        guard let source else {
            let issue = ConfigIssue(
                file: current.config.sourceFile, line: nil, keyPath: "",
                message: "this server was started without a configuration file to reload from")
            return refuse([issue], current: current, trigger: trigger)
        }
        var config: ProxyConfig
        let materials: CredentialMaterials
        do throws(ConfigError) {
            config = try source.load()
            materials = try CredentialMaterials.load(config, environment: environment())
        } catch {
            return refuse(error.issues, current: current, trigger: trigger)
        }

        var warnings: [String] = []
        let old = current.config.proxy
        if config.proxy.listen != old.listen {
            warnings.append(
                "proxy.listen cannot change on reload: still listening on \(old.listen) (restart to use \(config.proxy.listen))"
            )
        }
        if config.proxy.adminListen != old.adminListen {
            warnings.append(
                "proxy.admin_listen cannot change on reload: still \(old.adminListen.map { "\($0)" } ?? "off") (restart to use \(config.proxy.adminListen.map { "\($0)" } ?? "off"))"
            )
        }
        config.proxy.listen = old.listen
        config.proxy.adminListen = old.adminListen
        for (key, value) in ProxySettingTable.restartOnly where value(config.proxy) != value(old) {
            warnings.append("proxy.\(key) changed: takes effect on restart")
        }
        if config.tokenStore != current.config.tokenStore {
            warnings.append("token_store changed: takes effect on restart")
        }

        let drop = TokenRelevantChanges.credentialsToDrop(
            old: current.config, oldMaterials: current.materials, new: config, newMaterials: materials)
        let generation: Int
        do {
            generation = try runtime.replace(with: config, materials: materials)
        } catch {
            let issue = ConfigIssue(
                file: config.sourceFile, line: nil, keyPath: "",
                message: "the new configuration cannot be installed (TLS settings rejected)")
            return refuse([issue], current: current, trigger: trigger)
        }
        let dropped = drop.map { (externalCredential: $0, entries: cache.removeAll(externalCredential: $0)) }
        applied(config)
        metrics.reloaded(success: true, generation: generation)
        refusal.withLockedValue { $0 = [] }
        for warning in warnings { logger.warning("reload: \(warning)") }
        if config.proxy.caFiles != old.caFiles {
            logger.notice(
                "reload: proxy.ca_file changed: new connections to endpoints and identity providers use it now")
        }
        logger.notice(
            "configuration reloaded",
            metadata: [
                "trigger": "\(trigger)", "generation": "\(generation)", "file": "\(source.description)",
                "named_credentials": "\(config.namedCredentials.count)",
                "external_credentials": "\(config.externalCredentials.count)",
                "tokens_dropped_for": "\(drop.joined(separator: ","))",
            ])
        return ReloadOutcome(
            generation: generation, applied: true, errors: [], warnings: warnings, droppedTokens: dropped)
    }

    private func refuse(_ issues: [ConfigIssue], current: RuntimeConfiguration.Snapshot, trigger: String)
        -> ReloadOutcome
    {
        metrics.reloaded(success: false, generation: current.generation)
        refusal.withLockedValue { $0 = issues }
        for issue in issues { logger.error("reload refused: \(issue.description)") }
        logger.error(
            "configuration not reloaded: still serving the previous one",
            metadata: [
                "trigger": "\(trigger)", "generation": "\(current.generation)", "problems": "\(issues.count)",
            ])
        return ReloadOutcome(
            generation: current.generation, applied: false, errors: issues, warnings: [], droppedTokens: [])
    }
}
