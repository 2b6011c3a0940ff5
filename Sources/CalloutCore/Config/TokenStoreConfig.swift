/// `[token_store]`: where replicas share tokens (PostgreSQL). Absent: tokens live in this process
/// only. Holds names of environment variables, never a password or key.
public struct TokenStoreConfig: Sendable, Equatable, Hashable {
    public enum TLSMode: String, Sendable, Equatable, Hashable, CaseIterable {
        /// Plain TCP (loopback or a trusted network only).
        case disable
        /// TLS when the server offers it, without verifying its certificate.
        case prefer
        /// TLS, the server's certificate verified against `ca_file` (or the system's roots) and
        /// its host name.
        case require
    }

    /// `url` as given, without a password (a password in it is refused).
    public var url: String
    public var host: String
    public var port: Int
    public var username: String
    public var database: String
    /// `password_env`: the variable holding the database password; `nil`: no password.
    public var passwordEnv: String?
    /// `encryption_key_env`: 32 random bytes, base64, that seal every stored token.
    public var encryptionKeyEnv: String
    /// `previous_encryption_key_envs`: keys rows written before a rotation may still be sealed
    /// with; they open rows, never seal them.
    public var previousEncryptionKeyEnvs: [String]
    /// `tls`.
    public var tls: TLSMode
    /// `ca_file`: trust roots for `tls = "require"`; `nil`: the system's.
    public var caFile: String?
    /// `timeout_ms`: the longest any one store operation may take before the callout goes on
    /// without the store.
    public var timeoutMilliseconds: Int
    /// `lease_seconds`: how long a replica fetching a token holds the others off; the others
    /// wait at most this long for its row, then fetch themselves.
    public var leaseSeconds: Int
    /// `retry_seconds`: after the store failed, how long callouts go without it before it is
    /// tried again.
    public var retrySeconds: Int
    /// `table`: the table's name.
    public var table: String
    /// `max_connections`: connections to PostgreSQL per replica.
    public var maxConnections: Int

    public static let defaultPort = 5432
    public static let defaultTimeoutMilliseconds = 500
    public static let defaultLeaseSeconds = 15
    public static let defaultRetrySeconds = 5
    public static let defaultTable = "callout_tokens"
    public static let defaultMaxConnections = 4

    public init(
        url: String, host: String, port: Int = Self.defaultPort, username: String, database: String,
        passwordEnv: String? = nil, encryptionKeyEnv: String, previousEncryptionKeyEnvs: [String] = [],
        tls: TLSMode = .prefer, caFile: String? = nil, timeoutMilliseconds: Int = Self.defaultTimeoutMilliseconds,
        leaseSeconds: Int = Self.defaultLeaseSeconds, retrySeconds: Int = Self.defaultRetrySeconds,
        table: String = Self.defaultTable, maxConnections: Int = Self.defaultMaxConnections
    ) {
        self.url = url
        self.host = host
        self.port = port
        self.username = username
        self.database = database
        self.passwordEnv = passwordEnv
        self.encryptionKeyEnv = encryptionKeyEnv
        self.previousEncryptionKeyEnvs = previousEncryptionKeyEnvs
        self.tls = tls
        self.caFile = caFile
        self.timeoutMilliseconds = timeoutMilliseconds
        self.leaseSeconds = leaseSeconds
        self.retrySeconds = retrySeconds
        self.table = table
        self.maxConnections = maxConnections
    }

    /// The parts of a `postgresql://user@host:port/database` URL.
    public struct ParsedURL: Equatable, Sendable {
        public var host: String
        public var port: Int
        public var username: String
        public var database: String
    }

    /// Parses `url`; the error says what is wrong (never echoing a password).
    public static func parseURL(_ url: String) -> Result<ParsedURL, URLProblem> {
        var rest: Substring
        if url.hasPrefix("postgresql://") {
            rest = url.dropFirst("postgresql://".count)
        } else if url.hasPrefix("postgres://") {
            rest = url.dropFirst("postgres://".count)
        } else {
            return .failure(.scheme)
        }
        if let query = rest.firstIndex(of: "?") {
            guard rest[rest.index(after: query)...].isEmpty else { return .failure(.query) }
            rest = rest[..<query]
        }
        guard let at = rest.lastIndex(of: "@") else { return .failure(.user) }
        let userInfo = rest[..<at]
        if userInfo.contains(":") { return .failure(.password) }
        let username = String(userInfo)
        guard !username.isEmpty else { return .failure(.user) }
        var hostPart = rest[rest.index(after: at)...]
        var database = ""
        if let slash = hostPart.firstIndex(of: "/") {
            database = String(hostPart[hostPart.index(after: slash)...])
            hostPart = hostPart[..<slash]
        }
        guard !database.isEmpty, !database.contains("/") else { return .failure(.database) }
        var host = String(hostPart)
        var port = defaultPort
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return .failure(.host) }
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { return .failure(.port) }
                port = p
            } else if !after.isEmpty {
                return .failure(.host)
            }
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":") {
            guard let p = Int(host[host.index(after: colon)...]), (1...65535).contains(p) else {
                return .failure(.port)
            }
            port = p
            host = String(host[..<colon])
        }
        guard !host.isEmpty else { return .failure(.host) }
        return .success(ParsedURL(host: host, port: port, username: username, database: database))
    }

    public enum URLProblem: Error, Equatable, Sendable, CustomStringConvertible {
        case scheme, user, password, host, port, database, query

        public var description: String {
            switch self {
            case .scheme: "must start with postgresql://"
            case .user: "must name the database user (postgresql://USER@HOST:PORT/DATABASE)"
            case .password:
                "must not hold a password: give the name of an environment variable holding it in password_env"
            case .host: "must name the host (postgresql://USER@HOST:PORT/DATABASE)"
            case .port: "has a port that is not a number between 1 and 65535"
            case .database: "must name the database after the host (postgresql://USER@HOST:PORT/DATABASE)"
            case .query: "takes no query parameters: set tls, ca_file and timeout_ms as keys of [token_store]"
            }
        }
    }

    /// Whether `name` is a plain, unquoted PostgreSQL identifier this project accepts as a table name.
    public static func isValidTableName(_ name: String) -> Bool {
        guard let first = name.utf8.first, (1...63).contains(name.utf8.count) else { return false }
        let lower = UInt8(ascii: "a")...UInt8(ascii: "z")
        let digits = UInt8(ascii: "0")...UInt8(ascii: "9")
        guard lower.contains(first) || first == UInt8(ascii: "_") else { return false }
        return name.utf8.allSatisfy { lower.contains($0) || digits.contains($0) || $0 == UInt8(ascii: "_") }
    }
}
