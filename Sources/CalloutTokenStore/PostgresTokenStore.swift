import CalloutCore
import CalloutTokens
import Logging
import NIOCore
import NIOSSL
import PostgresNIO

/// ``SharedTokenStore`` on PostgreSQL: one row per cache key digest, the token sealed, its times
/// in clear for claims and clean-up, a lease (holder and end) in the same row. Every time is the
/// server's `now()`. The table name is checked by the configuration (`[a-z_][a-z0-9_]*`) before
/// it reaches any statement; every value is a bound parameter.
public final class PostgresTokenStore: SharedTokenStore {
    public let client: PostgresClient
    public let table: String
    /// For start-up and `check`: one connection of its own, whose errors (a wrong password, a
    /// missing database) are reported as the server gave them, where the pool would retry.
    private let direct: PostgresConnection.Configuration
    private let logger: Logger

    /// The schema version this build reads and writes.
    public static let schemaVersion = 1

    /// A store for `config` (its client not yet running: run ``PostgresClient/run()`` in a task).
    public convenience init(
        _ config: TokenStoreConfig, password: String?, eventLoopGroup: any EventLoopGroup, logger: Logger
    ) throws {
        let (pooled, direct) = try Self.configurations(config, password: password)
        self.init(
            client: PostgresClient(configuration: pooled, eventLoopGroup: eventLoopGroup), direct: direct,
            table: config.table, logger: logger)
    }

    init(client: PostgresClient, direct: PostgresConnection.Configuration, table: String, logger: Logger) {
        precondition(TokenStoreConfig.isValidTableName(table), "table names are checked by the configuration")
        self.client = client
        self.direct = direct
        self.table = table
        self.logger = logger
    }

    static func configurations(_ config: TokenStoreConfig, password: String?) throws -> (
        PostgresClient.Configuration, PostgresConnection.Configuration
    ) {
        var settings = TLSConfiguration.makeClientConfiguration()
        let pooledTLS: PostgresClient.Configuration.TLS
        let directTLS: PostgresConnection.Configuration.TLS
        switch config.tls {
        case .disable:
            pooledTLS = .disable
            directTLS = .disable
        case .prefer:
            settings.certificateVerification = .none
            pooledTLS = .prefer(settings)
            directTLS = .prefer(try NIOSSLContext(configuration: settings))
        case .require:
            if let ca = config.caFile { settings.trustRoots = .file(ca) }
            pooledTLS = .require(settings)
            directTLS = .require(try NIOSSLContext(configuration: settings))
        }
        let connectTimeout = max(config.timeoutMilliseconds, 1000)
        var pooled = PostgresClient.Configuration(
            host: config.host, port: config.port, username: config.username, password: password,
            database: config.database, tls: pooledTLS)
        pooled.options.connectTimeout = .milliseconds(Int64(connectTimeout))
        pooled.options.maximumConnections = config.maxConnections
        // One connection kept open, so a cold burst does not first wait for a login.
        pooled.options.minimumConnections = 1
        pooled.options.additionalStartupParameters = [("application_name", "callout-proxy")]
        var direct = PostgresConnection.Configuration(
            host: config.host, port: config.port, username: config.username, password: password,
            database: config.database, tls: directTLS)
        direct.options.connectTimeout = .milliseconds(Int64(connectTimeout))
        direct.options.additionalStartupParameters = [("application_name", "callout-proxy")]
        return (pooled, direct)
    }

    /// Runs `body` on a connection of its own, closed afterwards.
    func withDirectConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await PostgresConnection.connect(configuration: direct, id: 1, logger: logger)
        do {
            let value = try await body(connection)
            try? await connection.close()
            return value
        } catch {
            try? await connection.close()
            throw error
        }
    }

    // MARK: Schema

    /// Creates the table (or checks it), under a transaction-scoped advisory lock so replicas
    /// starting together do not race on it.
    public func migrate() async throws {
        try await withDirectConnection { connection in
            try await connection.query("BEGIN", logger: logger)
            do {
                try await connection.query(
                    "SELECT pg_advisory_xact_lock(hashtext(\("callout-proxy token store " + table)))", logger: logger)
                try await connection.query(
                    """
                    CREATE TABLE IF NOT EXISTS \(unescaped: table) (
                        key_digest bytea PRIMARY KEY,
                        sealed bytea,
                        key_id bytea,
                        token_digest bytea,
                        issued_at timestamptz,
                        refresh_at timestamptz,
                        expires_at timestamptz,
                        lease_holder text,
                        lease_until timestamptz,
                        updated_at timestamptz NOT NULL DEFAULT now()
                    )
                    """, logger: logger)
                try await connection.query(
                    "CREATE INDEX IF NOT EXISTS \(unescaped: table)_expires_at ON \(unescaped: table) (expires_at)",
                    logger: logger)
                try await connection.query(
                    "COMMENT ON TABLE \(unescaped: table) IS 'callout-proxy token store, schema \(unescaped: String(Self.schemaVersion))'",
                    logger: logger)
                try await connection.query("COMMIT", logger: logger)
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
            try await checkSchema(on: connection)
        }
    }

    /// The columns this build needs, each with its type.
    static let columns: [(String, String)] = [
        ("key_digest", "bytea"), ("sealed", "bytea"), ("key_id", "bytea"), ("token_digest", "bytea"),
        ("issued_at", "timestamp with time zone"), ("refresh_at", "timestamp with time zone"),
        ("expires_at", "timestamp with time zone"), ("lease_holder", "text"),
        ("lease_until", "timestamp with time zone"), ("updated_at", "timestamp with time zone"),
    ]

    /// Throws ``SchemaProblem`` when the table is missing or lacks a column this build needs.
    public func checkSchema() async throws {
        try await withDirectConnection { try await checkSchema(on: $0) }
    }

    private func checkSchema(on connection: PostgresConnection) async throws {
        let rows = try await connection.query(
            """
            SELECT column_name::text, data_type::text FROM information_schema.columns
            WHERE table_schema = current_schema() AND table_name = \(table)
            """, logger: logger)
        var found: [String: String] = [:]
        for try await (name, type) in rows.decode((String, String).self) { found[name] = type }
        guard !found.isEmpty else { throw SchemaProblem(description: "table \(table) does not exist") }
        let missing = Self.columns.filter { found[$0.0] != $0.1 }.map { "\($0.0) \($0.1)" }
        guard missing.isEmpty else {
            throw SchemaProblem(description: "table \(table) lacks \(missing.joined(separator: ", "))")
        }
    }

    public struct SchemaProblem: Error, CustomStringConvertible {
        public var description: String
    }

    /// postgres-nio's errors describe themselves generically (to keep query data out of logs);
    /// this says what an operator needs — the error code, the server's message, the connection
    /// failure — and never the query or its parameters.
    public static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return SharedTokens.describe(error) }
        var parts = [error.code.description]
        if let info = error.serverInfo {
            if let state = info[.sqlState] { parts.append("SQLSTATE \(state)") }
            if let message = info[.message] { parts.append(message) }
        }
        if let underlying = error.underlying { parts.append(SharedTokens.describe(underlying)) }
        return String(parts.joined(separator: ": ").prefix(300))
    }

    // MARK: SharedTokenStore

    public func read(_ keyDigest: [UInt8]) async throws -> StoredTokenRow? {
        let rows = try await client.query(
            """
            SELECT sealed, key_id, token_digest, extract(epoch from now())::float8,
                   (lease_until IS NOT NULL AND lease_until > now())
            FROM \(unescaped: table) WHERE key_digest = \(ByteBuffer(bytes: keyDigest))
            """, logger: logger)
        for try await (sealed, keyID, digest, now, leaseHeld) in rows.decode(
            (ByteBuffer?, ByteBuffer?, ByteBuffer?, Double, Bool).self)
        {
            let complete = sealed != nil && keyID != nil && digest != nil
            return StoredTokenRow(
                sealed: complete ? sealed.map { Array($0.readableBytesView) } : nil,
                keyID: keyID.map { Array($0.readableBytesView) } ?? [],
                tokenDigest: digest.map { Array($0.readableBytesView) } ?? [], now: now, leaseHeld: leaseHeld)
        }
        return nil
    }

    public func claim(_ keyDigest: [UInt8], holder: String, leaseSeconds: Int, stale: [[UInt8]]) async throws
        -> Double?
    {
        let staleDigests = stale.map { ByteBuffer(bytes: $0) }
        let rows = try await client.query(
            """
            INSERT INTO \(unescaped: table) AS r (key_digest, lease_holder, lease_until)
            VALUES (\(ByteBuffer(bytes: keyDigest)), \(holder), now() + make_interval(secs => \(Double(leaseSeconds))))
            ON CONFLICT (key_digest) DO UPDATE
                SET lease_holder = EXCLUDED.lease_holder, lease_until = EXCLUDED.lease_until, updated_at = now()
                WHERE (r.lease_until IS NULL OR r.lease_until <= now())
                  AND (r.sealed IS NULL OR r.refresh_at IS NULL OR r.refresh_at <= now()
                       OR r.token_digest = ANY(\(staleDigests)::bytea[]))
            RETURNING extract(epoch from now())::float8
            """, logger: logger)
        for try await now in rows.decode(Double.self) { return now }
        return nil
    }

    public func publish(_ keyDigest: [UInt8], row: SealedTokenRow, holder: String) async throws {
        try await client.query(
            """
            INSERT INTO \(unescaped: table) AS r
                (key_digest, sealed, key_id, token_digest, issued_at, refresh_at, expires_at, updated_at)
            VALUES (\(ByteBuffer(bytes: keyDigest)), \(ByteBuffer(bytes: row.sealed)), \(ByteBuffer(bytes: row.keyID)),
                    \(ByteBuffer(bytes: row.tokenDigest)), to_timestamp(\(row.issuedAt)),
                    to_timestamp(\(row.issuedAt + row.refreshAfter)), to_timestamp(\(row.issuedAt + Double(row.lifetime))),
                    now())
            ON CONFLICT (key_digest) DO UPDATE SET
                sealed = EXCLUDED.sealed, key_id = EXCLUDED.key_id, token_digest = EXCLUDED.token_digest,
                issued_at = EXCLUDED.issued_at, refresh_at = EXCLUDED.refresh_at, expires_at = EXCLUDED.expires_at,
                lease_holder = CASE WHEN r.lease_holder = \(holder) THEN NULL ELSE r.lease_holder END,
                lease_until = CASE WHEN r.lease_holder = \(holder) THEN NULL ELSE r.lease_until END,
                updated_at = now()
            """, logger: logger)
    }

    public func release(_ keyDigest: [UInt8], holder: String) async throws {
        try await client.query(
            """
            UPDATE \(unescaped: table) SET lease_holder = NULL, lease_until = NULL, updated_at = now()
            WHERE key_digest = \(ByteBuffer(bytes: keyDigest)) AND lease_holder = \(holder)
            """, logger: logger)
    }

    public func invalidate(_ keyDigest: [UInt8], tokenDigest: [UInt8]) async throws -> Bool {
        let rows = try await client.query(
            """
            UPDATE \(unescaped: table)
            SET sealed = NULL, key_id = NULL, token_digest = NULL, refresh_at = NULL, updated_at = now()
            WHERE key_digest = \(ByteBuffer(bytes: keyDigest)) AND token_digest = \(ByteBuffer(bytes: tokenDigest))
            RETURNING 1
            """, logger: logger)
        for try await _ in rows.decode(Int32.self) { return true }
        return false
    }

    public func removeExpired() async throws -> Int {
        let rows = try await client.query(
            """
            DELETE FROM \(unescaped: table)
            WHERE (expires_at IS NULL OR expires_at < now() OR sealed IS NULL)
              AND (lease_until IS NULL OR lease_until < now())
            RETURNING 1
            """, logger: logger)
        var count = 0
        for try await _ in rows.decode(Int32.self) { count += 1 }
        return count
    }
}
