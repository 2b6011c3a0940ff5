import CalloutCore
import CalloutTokens
import Metrics
import NIOConcurrencyHelpers
import Prometheus

/// The proxy's metrics, recorded through swift-metrics into one Prometheus registry.
///
/// The registry is injected (tests run several servers in one process, each with its own); the
/// `serve` command also bootstraps the process-wide `MetricsSystem` with the same registry.
/// Labels carry only configured names and fixed words: an alias that names no configured
/// named credential is labelled `unknown`, never echoed.
public final class ProxyMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let factory: PrometheusMetricsFactory
    /// Reads the upstream connection count at scrape time.
    private let upstreamConnections = NIOLockedValueBox<(@Sendable () -> Int)?>(nil)

    /// Cache totals already added to the counters, so a scrape adds only what is new.
    private let reportedCacheStats = NIOLockedValueBox(TokenCacheStats())
    /// Where dropped log lines are counted, and the total already added to the counter.
    private let droppedLogLines = NIOLockedValueBox<(source: (@Sendable () -> Int)?, reported: Int)>((nil, 0))

    public static let durationBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
    ]

    /// Metric names, for dashboards and tests.
    public enum Name {
        public static let callouts = "callout_requests_total"
        public static let calloutDuration = "callout_request_duration_seconds"
        public static let upstreamDuration = "callout_upstream_duration_seconds"
        public static let notReplayed = "callout_refresh_not_replayed_total"
        public static let refreshGuarded = "callout_refresh_guarded_total"
        public static let tokenWaits = "callout_token_waits_total"
        public static let tokenLifetime = "callout_token_issued_lifetime_seconds"
        public static let shortTokenLifetimes = "callout_token_short_lifetime_total"
        public static let connectionsRejected = "callout_connections_rejected_total"
        public static let connectionSetupFailures = "callout_connection_setup_failures_total"
        public static let upstreamDesync = "callout_upstream_desync_total"
        public static let openConnections = "callout_open_connections"
        public static let upstreamConnections = "callout_upstream_connections"
        public static let tokenRequests = "callout_token_requests_total"
        public static let idpDuration = "callout_idp_request_duration_seconds"
        public static let cacheHits = "callout_token_cache_hits_total"
        public static let cacheMisses = "callout_token_cache_misses_total"
        public static let cacheJoins = "callout_token_cache_single_flight_joins_total"
        public static let cacheRefreshAhead = "callout_token_cache_refresh_ahead_total"
        public static let cacheInvalidations = "callout_token_cache_invalidations_total"
        public static let cacheEvictions = "callout_token_cache_evictions_total"
        public static let cacheFetchFailures = "callout_token_cache_fetch_failures_total"
        public static let cacheFailFast = "callout_token_cache_fail_fast_total"
        public static let cacheSize = "callout_token_cache_size"
        public static let reloads = "callout_config_reloads_total"
        public static let generation = "callout_config_generation"
        public static let logLinesDropped = "callout_log_lines_dropped_total"
        public static let storeHits = "callout_token_store_hits_total"
        public static let storeMisses = "callout_token_store_misses_total"
        public static let storeLeaseWaits = "callout_token_store_lease_waits_total"
        public static let storeLeaseWaitTimeouts = "callout_token_store_lease_wait_timeouts_total"
        public static let storeErrors = "callout_token_store_errors_total"
        public static let storeRejectedRows = "callout_token_store_rejected_rows_total"
        public static let storeInvalidations = "callout_token_store_invalidations_total"
        public static let storeAvailable = "callout_token_store_available"
    }

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = Self.durationBuckets
        self.factory = factory
        // Unlabelled series exist from the start, so a first scrape shows them at zero.
        for name in [
            Name.connectionsRejected, Name.cacheHits, Name.cacheMisses, Name.cacheJoins, Name.cacheRefreshAhead,
            Name.cacheInvalidations, Name.cacheEvictions, Name.cacheFetchFailures, Name.cacheFailFast,
            Name.logLinesDropped,
        ] {
            _ = CoreMetrics.Counter(label: name, factory: factory)
        }
        CoreMetrics.Gauge(label: Name.openConnections, factory: factory).record(0)
        CoreMetrics.Gauge(label: Name.cacheSize, factory: factory).record(0)
    }

    /// Makes this registry the process-wide swift-metrics backend, so libraries that record
    /// through `MetricsSystem` land in the same scrape. Call once per process (`serve` does).
    public func bootstrapMetricsSystem() {
        MetricsSystem.bootstrap(factory)
    }

    // MARK: - Data plane

    /// Per-request series, made once per label set: the registry's lookup and name checks stay
    /// off the hot path. Labels are configured names and fixed words, so the sets are few.
    private struct CalloutSeries: Hashable {
        let namedCredential: String
        let statusClass: String
        let retried: Bool
    }
    private let calloutCounters = NIOLockedValueBox<[CalloutSeries: CoreMetrics.Counter]>([:])
    private let calloutTimers = NIOLockedValueBox<[String: CoreMetrics.Timer]>([:])
    private let upstreamTimers = NIOLockedValueBox<[String: CoreMetrics.Timer]>([:])

    /// One finished callout. `namedCredential` must already be a configured name or `unknown`.
    func calloutFinished(namedCredential: String, status: Int?, retried: Bool, duration: Duration) {
        let series = CalloutSeries(
            namedCredential: namedCredential, statusClass: Self.statusClass(status), retried: retried)
        let factory = self.factory
        calloutCounters.withLockedValue { counters in
            if let counter = counters[series] { return counter }
            let counter = Counter(
                label: Name.callouts,
                dimensions: [
                    ("named_credential", series.namedCredential), ("status_class", series.statusClass),
                    ("retried", series.retried ? "true" : "false"),
                ], factory: factory)
            counters[series] = counter
            return counter
        }.increment()
        timer(Name.calloutDuration, namedCredential, in: calloutTimers).recordNanoseconds(Self.nanoseconds(duration))
    }

    func upstreamResponded(namedCredential: String, duration: Duration) {
        timer(Name.upstreamDuration, namedCredential, in: upstreamTimers).recordNanoseconds(Self.nanoseconds(duration))
    }

    private func timer(
        _ label: String, _ namedCredential: String, in timers: NIOLockedValueBox<[String: CoreMetrics.Timer]>
    ) -> CoreMetrics.Timer {
        let factory = self.factory
        return timers.withLockedValue { timers in
            if let timer = timers[namedCredential] { return timer }
            let timer = CoreMetrics.Timer(
                label: label, dimensions: [("named_credential", namedCredential)], factory: factory)
            timers[namedCredential] = timer
            return timer
        }
    }

    func refreshNotReplayed(namedCredential: String) {
        CoreMetrics.Counter(
            label: Name.notReplayed, dimensions: [("named_credential", namedCredential)], factory: factory
        )
        .increment()
    }

    func refreshGuarded(namedCredential: String) {
        CoreMetrics.Counter(
            label: Name.refreshGuarded, dimensions: [("named_credential", namedCredential)], factory: factory
        ).increment()
    }

    /// The first short-lived token of an external credential (logged once as well).
    func shortTokenLifetime(externalCredential: String) {
        CoreMetrics.Counter(
            label: Name.shortTokenLifetimes, dimensions: [("external_credential", externalCredential)],
            factory: factory
        ).increment()
    }

    func connectionRejected() {
        CoreMetrics.Counter(label: Name.connectionsRejected, factory: factory).increment()
    }

    func upstreamDesync(namedCredential: String, reason: String) {
        CoreMetrics.Counter(
            label: Name.upstreamDesync, dimensions: [("named_credential", namedCredential), ("reason", reason)],
            factory: factory
        ).increment()
    }

    func connectionSetupFailed(kind: String) {
        CoreMetrics.Counter(label: Name.connectionSetupFailures, dimensions: [("kind", kind)], factory: factory)
            .increment()
    }

    // MARK: - Token store

    /// Unlabelled token store series at zero, so a first scrape shows them (with `[token_store]` only).
    func tokenStoreConfigured() {
        for name in [
            Name.storeHits, Name.storeMisses, Name.storeLeaseWaits, Name.storeLeaseWaitTimeouts,
            Name.storeInvalidations,
        ] {
            _ = CoreMetrics.Counter(label: name, factory: factory)
        }
        CoreMetrics.Gauge(label: Name.storeAvailable, factory: factory).record(1)
    }

    func tokenStore(_ event: SharedTokens.Event) {
        switch event {
        case .hit: CoreMetrics.Counter(label: Name.storeHits, factory: factory).increment()
        case .miss: CoreMetrics.Counter(label: Name.storeMisses, factory: factory).increment()
        case .leaseWait: CoreMetrics.Counter(label: Name.storeLeaseWaits, factory: factory).increment()
        case .leaseWaitTimedOut: CoreMetrics.Counter(label: Name.storeLeaseWaitTimeouts, factory: factory).increment()
        case .invalidated: CoreMetrics.Counter(label: Name.storeInvalidations, factory: factory).increment()
        case .rejectedRow(let problem):
            let reason =
                switch problem {
                case .unknownKey: "unknown_key"
                case .notAuthentic: "not_authentic"
                case .malformed: "malformed"
                }
            CoreMetrics.Counter(label: Name.storeRejectedRows, dimensions: [("reason", reason)], factory: factory)
                .increment()
        case .error(let operation, _):
            CoreMetrics.Counter(label: Name.storeErrors, dimensions: [("operation", operation)], factory: factory)
                .increment()
        case .unavailable: CoreMetrics.Gauge(label: Name.storeAvailable, factory: factory).record(0)
        case .available: CoreMetrics.Gauge(label: Name.storeAvailable, factory: factory).record(1)
        }
    }

    // MARK: - Tokens

    /// One token request to an identity provider. `externalCredential` must be a configured name or `unknown`.
    func tokenRequested(externalCredential: String, outcome: String, duration: Duration) {
        Counter(
            label: Name.tokenRequests, dimensions: [("external_credential", externalCredential), ("outcome", outcome)],
            factory: factory
        ).increment()
        CoreMetrics.Timer(
            label: Name.idpDuration, dimensions: [("external_credential", externalCredential)], factory: factory
        )
        .recordNanoseconds(Self.nanoseconds(duration))
    }

    // MARK: - Reload

    func reloaded(success: Bool, generation: Int) {
        CoreMetrics.Counter(
            label: Name.reloads, dimensions: [("outcome", success ? "success" : "failure")], factory: factory
        )
        .increment()
        configurationInstalled(generation: generation)
    }

    func configurationInstalled(generation: Int) {
        CoreMetrics.Gauge(label: Name.generation, factory: factory).record(generation)
    }

    // MARK: - Logs

    /// `total` counts the log lines dropped so far (a full buffer, a failed write); read at scrape time.
    func countDroppedLogLines(_ total: @escaping @Sendable () -> Int) {
        droppedLogLines.withLockedValue { $0.source = total }
    }

    // MARK: - Scrape

    /// Prometheus text exposition, after bringing the values read at scrape time up to date.
    /// Where `callout_upstream_connections` is read from at each scrape.
    public func readUpstreamConnections(_ count: @escaping @Sendable () -> Int) {
        upstreamConnections.withLockedValue { $0 = count }
    }

    public func scrape(cache: TokenCacheStats, openConnections: Int) -> String {
        CoreMetrics.Gauge(label: Name.openConnections, factory: factory).record(openConnections)
        if let count = upstreamConnections.withLockedValue({ $0 }) {
            CoreMetrics.Gauge(label: Name.upstreamConnections, factory: factory).record(count())
        }
        CoreMetrics.Gauge(label: Name.cacheSize, factory: factory).record(cache.size)
        let (previous, current) = reportedCacheStats.withLockedValue { reported in
            let previous = reported
            // Never go backwards, whatever order concurrent scrapes run in.
            var current = cache
            current.hits = max(current.hits, previous.hits)
            current.misses = max(current.misses, previous.misses)
            current.singleFlightJoins = max(current.singleFlightJoins, previous.singleFlightJoins)
            current.refreshAheadRuns = max(current.refreshAheadRuns, previous.refreshAheadRuns)
            current.invalidations = max(current.invalidations, previous.invalidations)
            current.evictions = max(current.evictions, previous.evictions)
            current.fetchFailures = max(current.fetchFailures, previous.fetchFailures)
            current.failFasts = max(current.failFasts, previous.failFasts)
            for (credential, stats) in previous.perCredential {
                current.perCredential[credential, default: stats].waits = max(
                    current.perCredential[credential]?.waits ?? 0, stats.waits)
            }
            reported = current
            return (previous, current)
        }
        let deltas: [(String, Int)] = [
            (Name.cacheHits, current.hits - previous.hits),
            (Name.cacheMisses, current.misses - previous.misses),
            (Name.cacheJoins, current.singleFlightJoins - previous.singleFlightJoins),
            (Name.cacheRefreshAhead, current.refreshAheadRuns - previous.refreshAheadRuns),
            (Name.cacheInvalidations, current.invalidations - previous.invalidations),
            (Name.cacheEvictions, current.evictions - previous.evictions),
            (Name.cacheFetchFailures, current.fetchFailures - previous.fetchFailures),
            (Name.cacheFailFast, current.failFasts - previous.failFasts),
        ]
        let droppedDelta = droppedLogLines.withLockedValue { dropped in
            let total = max(dropped.source?() ?? 0, dropped.reported)
            defer { dropped.reported = total }
            return total - dropped.reported
        }
        for (name, delta) in deltas + [(Name.logLinesDropped, droppedDelta)] where delta > 0 {
            CoreMetrics.Counter(label: name, factory: factory).increment(by: Int64(delta))
        }
        for (credential, stats) in current.perCredential {
            let dimensions = [("external_credential", credential)]
            if let lifetime = stats.issuedLifetimeSeconds {
                CoreMetrics.Gauge(label: Name.tokenLifetime, dimensions: dimensions, factory: factory).record(lifetime)
            }
            let delta = stats.waits - (previous.perCredential[credential]?.waits ?? 0)
            if delta > 0 {
                CoreMetrics.Counter(label: Name.tokenWaits, dimensions: dimensions, factory: factory)
                    .increment(by: Int64(delta))
            }
        }
        return registry.emitToString()
    }

    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    // MARK: - Labels

    static func statusClass(_ status: Int?) -> String {
        guard let status, (100...599).contains(status) else { return "none" }
        return "\(status / 100)xx"
    }

    /// The configured spelling of a named credential, or `unknown`.
    static func namedCredentialLabel(_ alias: String?, in config: ProxyConfig) -> String {
        alias.flatMap { config.namedCredentialName($0) } ?? "unknown"
    }

    /// The configured spelling of an external credential, or `unknown`.
    static func externalCredentialLabel(_ name: String?, in config: ProxyConfig) -> String {
        guard let name, let credential = config.externalCredential(name) else { return "unknown" }
        return credential.name
    }

    static func nanoseconds(_ d: Duration) -> Int64 {
        let (s, atto) = d.components
        return s &* 1_000_000_000 &+ atto / 1_000_000_000
    }
}
