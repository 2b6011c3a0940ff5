import Logging

/// The process log handler: one line per event, JSON (`{"ts":…,"level":…,"label":…,"msg":…,
/// metadata…}`, numbers and booleans bare) or human text (`ts level label: msg key=value…`),
/// encoded straight into a ``LogSink``'s buffer.
public struct LineLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public let label: String
    public let format: LogFormat
    public let sink: any LogSink

    public init(label: String, level: Logger.Level = .info, format: LogFormat = .json, sink: any LogSink) {
        self.label = label
        self.logLevel = level
        self.format = format
        self.sink = sink
    }

    /// JSON lines handed to `write` one at a time, on the logging thread (for tests and embedding).
    public init(label: String, level: Logger.Level = .info, write: @escaping @Sendable (String) -> Void) {
        self.init(label: label, level: level, format: .json, sink: ClosureLogSink(write: write))
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let keys = merged.keys.sorted()
        let message = event.message.description
        sink.append { buffer, clock in
            switch format {
            case .json:
                buffer.append(contentsOf: #"{"ts":""#.utf8)
                clock.append(to: &buffer)
                buffer.append(contentsOf: #"","level":""#.utf8)
                buffer.append(contentsOf: event.level.rawValue.utf8)
                buffer.append(contentsOf: #"","label":"#.utf8)
                LogLineEncoding.appendJSONString(label, to: &buffer)
                buffer.append(contentsOf: #","msg":"#.utf8)
                LogLineEncoding.appendJSONString(message, to: &buffer)
                for key in keys {
                    buffer.append(UInt8(ascii: ","))
                    LogLineEncoding.appendJSONString(key, to: &buffer)
                    buffer.append(UInt8(ascii: ":"))
                    Self.appendJSON(merged[key]!, to: &buffer)
                }
                buffer.append(contentsOf: "}\n".utf8)
            case .human:
                Self.appendHumanPrefix(level: event.level, label: label, message: message, clock: &clock, to: &buffer)
                for key in keys {
                    buffer.append(UInt8(ascii: " "))
                    buffer.append(contentsOf: key.utf8)
                    buffer.append(UInt8(ascii: "="))
                    LogLineEncoding.appendHumanString(Self.flatten(merged[key]!), to: &buffer)
                }
                buffer.append(UInt8(ascii: "\n"))
            }
        }
    }

    /// `2026-11-30T05:42:01.123Z info callout-proxy: message`.
    static func appendHumanPrefix(
        level: Logger.Level, label: String, message: String, clock: inout LogTimestamp, to buffer: inout [UInt8]
    ) {
        clock.append(to: &buffer)
        buffer.append(UInt8(ascii: " "))
        buffer.append(contentsOf: level.rawValue.utf8)
        buffer.append(UInt8(ascii: " "))
        LogLineEncoding.appendHumanString(label, to: &buffer)
        buffer.append(contentsOf: ": ".utf8)
        LogLineEncoding.appendHumanMessage(message, to: &buffer)
    }

    /// Numbers and booleans bare, arrays and dictionaries as JSON, everything else as a string.
    static func appendJSON(_ value: Logger.Metadata.Value, to buffer: inout [UInt8]) {
        switch value {
        case .string(let s): LogLineEncoding.appendJSONString(s, to: &buffer)
        case .stringConvertible(let c):
            switch c {
            case let n as Int: LogLineEncoding.appendInt(n, to: &buffer)
            case let b as Bool: buffer.append(contentsOf: (b ? "true" : "false").utf8)
            case let d as Double where d.isFinite: buffer.append(contentsOf: d.description.utf8)
            case let n as any BinaryInteger: buffer.append(contentsOf: n.description.utf8)
            default: LogLineEncoding.appendJSONString(c.description, to: &buffer)
            }
        case .array(let items):
            buffer.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { buffer.append(UInt8(ascii: ",")) }
                appendJSON(item, to: &buffer)
            }
            buffer.append(UInt8(ascii: "]"))
        case .dictionary(let d):
            buffer.append(UInt8(ascii: "{"))
            for (i, key) in d.keys.sorted().enumerated() {
                if i > 0 { buffer.append(UInt8(ascii: ",")) }
                LogLineEncoding.appendJSONString(key, to: &buffer)
                buffer.append(UInt8(ascii: ":"))
                appendJSON(d[key]!, to: &buffer)
            }
            buffer.append(UInt8(ascii: "}"))
        }
    }

    static func flatten(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): s
        case .stringConvertible(let c): c.description
        case .array(let a): a.map(flatten).joined(separator: ",")
        case .dictionary(let d): d.keys.sorted().map { "\($0)=\(flatten(d[$0]!))" }.joined(separator: ",")
        }
    }
}

/// Encodes each line on the calling thread and hands it to `write` as text.
public struct ClosureLogSink: LogSink {
    let write: @Sendable (String) -> Void

    public init(write: @escaping @Sendable (String) -> Void) { self.write = write }

    public func append(_ encode: (inout [UInt8], inout LogTimestamp) -> Void) {
        var line: [UInt8] = []
        var clock = LogTimestamp()
        encode(&line, &clock)
        write(String(decoding: line, as: UTF8.self))
    }
}
