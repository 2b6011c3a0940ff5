/// What one callout did, for the access log and metrics. Holds no token, query string or header value.
public struct CalloutLogRecord: Sendable {
    public var method: String
    /// The request target without its query string.
    public var path: String?
    /// The caller's address bytes (4 or 16).
    public var peer: [UInt8]?
    public var alias: String?
    public var principal: String?
    /// The `[[caller]]` the request authenticated as, if any.
    public var caller: String?
    public var status: Int?
    public var upstreamStatus: Int?
    public var problemCode: String?
    public var retried = false
    public var notReplayed = false
    public var token = TokenUse.none
    public var bytesOut = 0

    /// Whether the callout's token came from the cache or the identity provider.
    public enum TokenUse: Sendable {
        case none, cached, fetched
    }

    /// `target` is the request target as received; only its path is kept.
    public init(method: String, target: String? = nil, peer: [UInt8]? = nil) {
        self.method = method
        self.path = target.map { t in String(t[..<(t.utf8.firstIndex(of: UInt8(ascii: "?")) ?? t.endIndex)]) }
        self.peer = peer
    }

    public var tokenFetched: Bool { token == .fetched }

    /// A token was injected: fetched for this callout (also when a refresh fetched it), or cached.
    public mutating func tokenUsed(fetched: Bool) {
        if fetched {
            token = .fetched
        } else if token == .none {
            token = .cached
        }
    }
}

/// Receives data-plane events: the access log, metrics.
public protocol CalloutObserver: Sendable {
    func calloutFinished(_ record: CalloutLogRecord, duration: Duration)
    func upstreamResponded(namedCredential: String, duration: Duration)
    func refreshNotReplayed(namedCredential: String)
    func connectionRejected()
}
