import CalloutCore
import CalloutTokens
import Foundation
import Logging
import NIOCore
import PostgresNIO

/// `[token_store]` running: the PostgreSQL client, the schema made at start (and again until it
/// is made, when the store was down at start), expired rows removed now and then, and the
/// ``SharedTokens`` the token service asks.
public final class TokenStoreService: Sendable {
    public let shared: SharedTokens
    public let store: PostgresTokenStore
    public let config: TokenStoreConfig
    private let tasks: [Task<Void, Never>]

    /// How often expired rows are removed once the schema is in place.
    public static let cleanupInterval: Duration = .seconds(60)

    /// How long start-up waits for the schema to be made before serving without it (it is then
    /// made in the background as soon as the store answers).
    public static let startupSchemaWait: Duration = .seconds(5)

    /// Reads the password and keys from `environment`, starts the client, makes the schema (waiting
    /// at most ``startupSchemaWait``) and starts the maintenance task. A store that is down at
    /// start does not stop the proxy: it is tried again every `retry_seconds`.
    public static func start(
        _ config: TokenStoreConfig, cache: TokenCacheSettings, environment: [String: String],
        eventLoopGroup: any EventLoopGroup, logger: Logger,
        events: @escaping @Sendable (SharedTokens.Event) -> Void
    ) async throws(TokenStoreSetupError) -> TokenStoreService {
        let secrets = try TokenStoreSecrets.load(config, environment: environment)
        let store: PostgresTokenStore
        do {
            store = try PostgresTokenStore(
                config, password: secrets.password, eventLoopGroup: eventLoopGroup, logger: logger)
        } catch {
            throw TokenStoreSetupError(keyPath: "token_store.ca_file", message: "cannot be used: \(error)")
        }
        let client = store.client
        let shared = SharedTokens(
            store: store, keys: secrets.keys,
            settings: .init(
                timeout: .milliseconds(Int64(config.timeoutMilliseconds)), leaseSeconds: config.leaseSeconds,
                retrySeconds: config.retrySeconds, cache: cache),
            events: events, describeError: PostgresTokenStore.describe)
        let run = Task { await client.run() }
        let made = (try? await SharedTokens.race(timeout: startupSchemaWait) { try await store.migrate() }) != nil
        if made { Self.logReady(config, logger: logger) }
        let maintenance = Task {
            await Self.maintain(store: store, shared: shared, config: config, schemaMade: made, logger: logger)
        }
        return TokenStoreService(shared: shared, store: store, config: config, tasks: [run, maintenance])
    }

    private init(shared: SharedTokens, store: PostgresTokenStore, config: TokenStoreConfig, tasks: [Task<Void, Never>])
    {
        self.shared = shared
        self.store = store
        self.config = config
        self.tasks = tasks
    }

    /// Makes the schema (retrying every `retry_seconds` until it is made), then removes expired
    /// rows every ``cleanupInterval``.
    private static func maintain(
        store: PostgresTokenStore, shared: SharedTokens, config: TokenStoreConfig, schemaMade: Bool, logger: Logger
    ) async {
        var reported = false
        while !schemaMade, !Task.isCancelled {
            do {
                try await SharedTokens.race(timeout: startupSchemaWait) { try await store.migrate() }
                logReady(config, logger: logger)
                break
            } catch {
                if !reported {
                    reported = true
                    logger.warning(
                        "token store schema not made yet: callouts fetch tokens locally until it is",
                        metadata: [
                            "error": "\(PostgresTokenStore.describe(error))", "retry_seconds": "\(config.retrySeconds)",
                        ])
                }
                try? await Task.sleep(for: .seconds(config.retrySeconds))
            }
        }
        while !Task.isCancelled {
            let removed = await shared.removeExpired()
            if removed > 0 { logger.debug("token store: expired rows removed", metadata: ["rows": "\(removed)"]) }
            try? await Task.sleep(for: cleanupInterval)
        }
    }

    private static func logReady(_ config: TokenStoreConfig, logger: Logger) {
        logger.info(
            "token store ready",
            metadata: [
                "table": "\(config.table)", "host": "\(config.host)", "port": "\(config.port)",
                "database": "\(config.database)",
            ])
    }

    /// Stops the maintenance task and the client.
    public func close() async {
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }

    /// For `check`: connects, and reports whether the table is there with the columns this build
    /// needs. Nothing is written. Bounded by `timeout`.
    public static func probe(
        _ config: TokenStoreConfig, environment: [String: String], timeout: Duration, eventLoopGroup: any EventLoopGroup
    ) async -> ProbeResult {
        let secrets: TokenStoreSecrets
        do {
            secrets = try TokenStoreSecrets.load(config, environment: environment)
        } catch {
            return .unusable(error.description)
        }
        let store: PostgresTokenStore
        do {
            store = try PostgresTokenStore(
                config, password: secrets.password, eventLoopGroup: eventLoopGroup,
                logger: Logger(label: "token-store-check"))
        } catch {
            return .unusable("token_store.ca_file cannot be used: \(error)")
        }
        // A connection of its own: the pool (not started here) would retry a refused login.
        do {
            try await SharedTokens.race(timeout: timeout) { try await store.checkSchema() }
            return .ready
        } catch let problem as PostgresTokenStore.SchemaProblem {
            return .schema(problem.description)
        } catch {
            return .unreachable(PostgresTokenStore.describe(error))
        }
    }

    public enum ProbeResult: Sendable, Equatable {
        case ready
        /// Connected; the table is missing or differs (serve makes a missing one).
        case schema(String)
        case unreachable(String)
        /// The settings or secrets cannot be used.
        case unusable(String)
    }
}

/// The store's password and keys, read from the environment variables the configuration names.
struct TokenStoreSecrets {
    var password: String?
    var keys: TokenStoreKeys

    static func load(_ config: TokenStoreConfig, environment: [String: String]) throws(TokenStoreSetupError)
        -> TokenStoreSecrets
    {
        var password: String? = nil
        if let name = config.passwordEnv {
            guard let value = environment[name], !value.isEmpty else {
                throw TokenStoreSetupError(keyPath: "token_store.password_env", message: "\(name) is not set")
            }
            password = value
        }
        func key(_ name: String, _ keyPath: String) throws(TokenStoreSetupError) -> [UInt8] {
            guard let value = environment[name], !value.isEmpty else {
                throw TokenStoreSetupError(keyPath: keyPath, message: "\(name) is not set")
            }
            do {
                return try TokenStoreKeys.decode(base64: value)
            } catch {
                throw TokenStoreSetupError(keyPath: keyPath, message: "\(name) \(error.description)")
            }
        }
        let current = try key(config.encryptionKeyEnv, "token_store.encryption_key_env")
        var previous: [[UInt8]] = []
        for name in config.previousEncryptionKeyEnvs {
            previous.append(try key(name, "token_store.previous_encryption_key_envs"))
        }
        do {
            return TokenStoreSecrets(password: password, keys: try TokenStoreKeys(current: current, previous: previous))
        } catch {
            throw TokenStoreSetupError(keyPath: "token_store.encryption_key_env", message: error.description)
        }
    }
}

/// A `[token_store]` setting that cannot be used; never holds a secret's value.
public struct TokenStoreSetupError: Error, CustomStringConvertible, Sendable {
    public var keyPath: String
    public var message: String
    public var description: String { "\(keyPath): \(message)" }
}
