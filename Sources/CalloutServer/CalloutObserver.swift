/// What one callout did, for the access log and metrics. Holds no token, query string or header value.
public struct CalloutLogRecord: Sendable {
    public var method: String
    /// The request target without its query string.
    public var path: String?
    /// The caller's address bytes (4 or 16).
    public var peer: [UInt8]?
    /// The `[[caller]]` the request authenticated as, if any.
    public var caller: String?
    /// A token was injected: from the cache, unless `tokenFetched`.
    public var tokenInjected = false
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
