import Logging

/// Where the access line of each callout goes (`access_log` in `[proxy]`).
public enum AccessLogOutput: Sendable {
    /// No access line.
    case off
    /// As an `info` line of the process log (`access_log = "stderr"`): written only when the
    /// log level lets `info` through.
    case processLog
    /// Every callout, whatever the log level, to a writer of its own (`access_log = "<path>"`).
    case writer(any LogSink, LogFormat)
}

/// Writes one access line per callout, and the data plane's warnings to the process log.
public struct AccessLogObserver: CalloutObserver {
    let logger: Logger
    private enum Route {
        case none
        /// Encoded straight into the sink's buffer.
        case sink(any LogSink, LogFormat, label: String)
        /// Through a log handler other than ``LineLogHandler``.
        case logger
    }
    private let route: Route

    public init(logger: Logger, output: AccessLogOutput = .processLog) {
        self.logger = logger
        switch output {
        case .off: route = .none
        case .writer(let sink, let format): route = .sink(sink, format, label: logger.label)
        case .processLog:
            if logger.logLevel > .info {
                route = .none
            } else if let handler = logger.handler as? LineLogHandler {
                route = .sink(handler.sink, handler.format, label: handler.label)
            } else {
                route = .logger
            }
        }
    }

    public func calloutFinished(_ r: CalloutLogRecord, duration: Duration) {
        switch route {
        case .none: return
        case .sink(let sink, let format, let label):
            sink.append { buffer, clock in
                AccessLine.append(r, duration: duration, format: format, label: label, clock: &clock, to: &buffer)
            }
        case .logger:
            var metadata: Logger.Metadata = [:]
            AccessLine.fields(r, duration: duration) { key, value in metadata["\(key)"] = value.metadataValue }
            logger.info("callout", metadata: metadata)
        }
    }

    public func upstreamResponded(namedCredential: String, duration: Duration) {}
    public func refreshNotReplayed(namedCredential: String) {}
    public func connectionRejected() { logger.warning("connection refused: max_connections reached") }
}

extension CalloutLogRecord {
    /// `target` is the request target as received; only its path is kept.
    public init(method: String, target: String, peer: [UInt8]? = nil) {
        self.init(method: method)
        self.path = String(target[..<(target.utf8.firstIndex(of: UInt8(ascii: "?")) ?? target.endIndex)])
        self.peer = peer
    }

    /// A token was injected: fetched for this callout (also when a refresh fetched it), or cached.
    public mutating func tokenUsed(fetched: Bool) {
        tokenInjected = true
        tokenFetched = tokenFetched || fetched
    }
}

/// The access line: what one callout did, never a token, query string or header value.
enum AccessLine {
    /// Every field of the line, in order; absent values are left out.
    static func fields(_ r: CalloutLogRecord, duration: Duration, _ body: (StaticString, LogValue) -> Void) {
        body("method", .string(r.method))
        if let p = r.path { body("path", .string(p)) }
        if let s = r.status { body("status", .int(s)) }
        body("duration_ms", .milliseconds(duration))
        body("bytes_out", .int(r.bytesOut))
        body("retried", .bool(r.retried))
        if let a = r.alias { body("named_credential", .string(a)) }
        if let p = r.principal { body("principal", .string(p)) }
        if let c = r.caller { body("caller", .string(c)) }
        if let p = r.peer { body("peer", .address(p)) }
        if let u = r.upstreamStatus { body("upstream_status", .int(u)) }
        if let c = r.problemCode { body("problem", .string(c)) }
        if r.tokenFetched {
            body("token", .string("fetched"))
        } else if r.tokenInjected {
            body("token", .string("cached"))
        }
        if r.notReplayed { body("not_replayed", .bool(true)) }
        if let id = r.requestId { body("request_id", .string(id)) }
        if let reason = r.upstreamFailure { body("upstream_failure", .string(reason)) }
    }

    static func append(
        _ r: CalloutLogRecord, duration: Duration, format: LogFormat, label: String, clock: inout LogTimestamp,
        to buffer: inout [UInt8]
    ) {
        switch format {
        case .json:
            buffer.append(contentsOf: #"{"ts":""#.utf8)
            clock.append(to: &buffer)
            buffer.append(contentsOf: #"","level":"info","label":"#.utf8)
            LogLineEncoding.appendJSONString(label, to: &buffer)
            buffer.append(contentsOf: #","msg":"callout""#.utf8)
            fields(r, duration: duration) { key, value in LogLineEncoding.appendJSONMember(key, value, to: &buffer) }
            buffer.append(contentsOf: "}\n".utf8)
        case .human:
            LineLogHandler.appendHumanPrefix(level: .info, label: label, message: "callout", clock: &clock, to: &buffer)
            fields(r, duration: duration) { key, value in LogLineEncoding.appendHumanMember(key, value, to: &buffer) }
            buffer.append(UInt8(ascii: "\n"))
        }
    }
}

extension LogValue {
    /// For log handlers other than ``LineLogHandler``: numbers and booleans stay numbers.
    var metadataValue: Logger.Metadata.Value {
        switch self {
        case .string(let s): .string(s)
        case .int(let n): .stringConvertible(n)
        case .milliseconds(let d): .stringConvertible(Double(LogLineEncoding.hundredthsOfMilliseconds(d)) / 100)
        case .bool(let b): .stringConvertible(b)
        case .address(let bytes):
            .string(
                {
                    var out: [UInt8] = []
                    LogLineEncoding.appendAddress(bytes, to: &out)
                    return String(decoding: out, as: UTF8.self)
                }())
        }
    }
}
