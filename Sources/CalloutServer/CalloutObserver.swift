import Logging

/// What one callout did, for the access log and metrics. Holds no token, query string or header value.
public struct CalloutLogRecord: Sendable {
    public var method: String
    public var alias: String?
    public var principal: String?
    public var status: Int?
    public var upstreamStatus: Int?
    public var problemCode: String?
    public var retried = false
    public var notReplayed = false
    public var tokenFetched = false
    public var bytesOut = 0
    /// The callout's `X-Request-Id` (the caller's, or one the proxy made and sent upstream).
    public var requestId: String?
    /// Why the upstream could not be reached or answered out of step (a caller-safe reason).
    public var upstreamFailure: String?

    public init(method: String) { self.method = method }
}

/// Receives data-plane events: the access log, metrics.
public protocol CalloutObserver: Sendable {
    func calloutFinished(_ record: CalloutLogRecord, duration: Duration)
    func upstreamResponded(namedCredential: String, duration: Duration)
    func refreshNotReplayed(namedCredential: String)
    /// A refresh status answered without a refresh: the token was within the refresh storm guard.
    func refreshGuarded(namedCredential: String)
    func connectionRejected()
    /// A client connection was closed at accept because its setup failed (`kind`: a fixed word).
    func connectionSetupFailed(kind: String)
    /// An upstream connection was out of step with its requests and closed (`reason`: a fixed word).
    func upstreamDesync(namedCredential: String, reason: String)
}

extension CalloutObserver {
    public func connectionSetupFailed(kind: String) {}
    public func upstreamDesync(namedCredential: String, reason: String) {}
}

extension CalloutObserver {
    public func refreshGuarded(namedCredential: String) {}
}

/// Writes one access log line per callout.
public struct AccessLogObserver: CalloutObserver {
    let logger: Logger

    public init(logger: Logger) { self.logger = logger }

    public func calloutFinished(_ r: CalloutLogRecord, duration: Duration) {
        guard logger.logLevel <= .info else { return }
        var metadata: Logger.Metadata = [
            "method": "\(r.method)",
            "status": "\(r.status.map(String.init) ?? "-")",
            "duration_ms": "\(Self.milliseconds(duration))",
            "bytes_out": "\(r.bytesOut)",
            "retried": "\(r.retried)",
        ]
        if let a = r.alias { metadata["named_credential"] = "\(a)" }
        if let p = r.principal { metadata["principal"] = "\(p)" }
        if let u = r.upstreamStatus { metadata["upstream_status"] = "\(u)" }
        if let c = r.problemCode { metadata["problem"] = "\(c)" }
        if r.tokenFetched { metadata["token"] = "fetched" }
        if r.notReplayed { metadata["not_replayed"] = "true" }
        if let id = r.requestId { metadata["request_id"] = "\(id)" }
        if let reason = r.upstreamFailure { metadata["upstream_failure"] = "\(reason)" }
        logger.info("callout", metadata: metadata)
    }

    public func upstreamResponded(namedCredential: String, duration: Duration) {}
    public func refreshNotReplayed(namedCredential: String) {}
    public func connectionRejected() { logger.warning("connection refused: max_connections reached") }

    static func milliseconds(_ d: Duration) -> String {
        let (s, atto) = d.components
        let ms = Double(s) * 1000 + Double(atto) / 1e15
        return String(format: "%.2f", ms)
    }
}
