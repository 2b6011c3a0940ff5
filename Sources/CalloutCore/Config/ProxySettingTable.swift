/// The numeric `[proxy]` settings in one table: each one's key, where it lives in
/// ``ProxySettings`` (whose initial value is the default), the accepted range, whether a reload
/// applies it, and the type column of its row in docs/configuration.md. The configuration
/// builder reads the values through it, ``ProxySettingTable/restartOnly`` is what the reloader
/// reports instead of applying, and a test holds the reference's rows to it.
public struct ProxyNumericSetting: Sendable {
    public enum Value: Sendable {
        case integer(any WritableKeyPath<ProxySettings, Int> & Sendable, ClosedRange<Int>)
        case number(any WritableKeyPath<ProxySettings, Double> & Sendable, ClosedRange<Double>)
    }

    /// The key in `[proxy]`.
    public let name: String
    public let value: Value
    /// Whether a reload applies a change; otherwise it is reported and takes effect on restart.
    public let reloadable: Bool
    /// The type column of the reference (`integer 1–120`), when not just the range.
    public let documentedType: String?

    init(_ name: String, _ value: Value, reloadable: Bool, documentedType: String? = nil) {
        self.name = name
        self.value = value
        self.reloadable = reloadable
        self.documentedType = documentedType
    }

    /// The type column of the reference: `integer LOW–HIGH` or `number LOW–HIGH` unless stated.
    public var typeText: String {
        if let documentedType { return documentedType }
        switch value {
        case .integer(_, let range): return "integer \(range.lowerBound)–\(range.upperBound)"
        case .number(_, let range): return "number \(range.lowerBound)–\(range.upperBound)"
        }
    }

    /// The default, as the reference writes it.
    public var defaultText: String {
        switch value {
        case .integer(let path, _): String(ProxySettings()[keyPath: path])
        case .number(let path, _): String(ProxySettings()[keyPath: path])
        }
    }

    /// The value in `settings`, for comparing two configurations.
    public func value(in settings: ProxySettings) -> AnyHashable {
        switch value {
        case .integer(let path, _): settings[keyPath: path]
        case .number(let path, _): settings[keyPath: path]
        }
    }
}

public enum ProxySettingTable {
    public static let numeric: [ProxyNumericSetting] = [
        .init("request_timeout_seconds", .integer(\.requestTimeoutSeconds, 1...120), reloadable: false),
        .init("connect_timeout_seconds", .integer(\.connectTimeoutSeconds, 1...120), reloadable: false),
        .init("max_header_bytes", .integer(\.maxHeaderBytes, 1024...1_048_576), reloadable: false),
        .init(
            "max_request_body_bytes", .integer(\.maxRequestBodyBytes, 0...(1 << 40)), reloadable: true,
            documentedType: "integer 0–2⁴⁰"),
        .init(
            "retry_body_buffer_bytes", .integer(\.retryBodyBufferBytes, 0...(64 << 20)), reloadable: true,
            documentedType: "integer 0–64 MiB"),
        .init("header_read_timeout_seconds", .integer(\.headerReadTimeoutSeconds, 1...300), reloadable: false),
        .init("request_body_timeout_seconds", .integer(\.requestBodyTimeoutSeconds, 1...3600), reloadable: false),
        .init(
            "min_request_body_rate_bytes_per_second",
            .integer(\.minRequestBodyRateBytesPerSecond, 0...(1 << 30)), reloadable: false),
        .init("idle_timeout_seconds", .integer(\.idleTimeoutSeconds, 1...3600), reloadable: false),
        .init("lingering_close_seconds", .integer(\.lingeringCloseSeconds, 0...60), reloadable: true),
        .init("lingering_close_max_bytes", .integer(\.lingeringCloseMaxBytes, 0...(1 << 30)), reloadable: true),
        .init("max_connections", .integer(\.maxConnections, 1...1_000_000), reloadable: true),
        .init(
            "upstream_max_connections_per_host", .integer(\.upstreamMaxConnectionsPerHost, 1...10_000),
            reloadable: true),
        .init("upstream_idle_timeout_seconds", .integer(\.upstreamIdleTimeoutSeconds, 1...3600), reloadable: true),
        .init("max_cached_tokens", .integer(\.maxCachedTokens, 1...10_000_000), reloadable: false),
        .init("token_refresh_ahead_ratio", .number(\.tokenRefreshAheadRatio, 0.1...1.0), reloadable: false),
        .init("token_expiry_skew_seconds", .integer(\.tokenExpirySkewSeconds, 0...600), reloadable: false),
        .init(
            "min_token_refresh_interval_seconds", .integer(\.minTokenRefreshIntervalSeconds, 0...3600),
            reloadable: false),
        .init(
            "assertion_not_before_skew_seconds", .integer(\.assertionNotBeforeSkewSeconds, 0...600), reloadable: true
        ),
        .init(
            "default_token_lifetime_seconds", .integer(\.defaultTokenLifetimeSeconds, 30...86_400), reloadable: false
        ),
        .init("max_formula_value_length", .integer(\.maxFormulaValueLength, 1...100_000), reloadable: true),
        .init("shutdown_grace_seconds", .integer(\.shutdownGraceSeconds, 0...600), reloadable: true),
        .init("admin_max_connections", .integer(\.adminMaxConnections, 1...1024), reloadable: true),
    ]

    /// Settings read once at start: a change is reported, not applied. The numeric ones come
    /// from ``numeric``; `access_log` is the one of another type.
    public static let restartOnly: [(String, @Sendable (ProxySettings) -> AnyHashable?)] = {
        var settings: [(String, @Sendable (ProxySettings) -> AnyHashable?)] = numeric.filter { !$0.reloadable }.map {
            setting in (setting.name, { @Sendable in setting.value(in: $0) })
        }
        settings.append(("access_log", { @Sendable in $0.accessLog }))
        return settings
    }()
}
