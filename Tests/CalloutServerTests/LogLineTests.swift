import CalloutCore
import Foundation
import Logging
import Testing

@testable import CalloutServer

/// The line formats, byte by byte: timestamps, escapes, numbers, the access line's fields.
@Suite struct LogLineTests {
    func text(_ encode: (inout [UInt8]) -> Void) -> String {
        var buffer: [UInt8] = []
        encode(&buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    @Test(arguments: [
        (0, "1970-01-01T00:00:00"),
        (-1, "1969-12-31T23:59:59"),
        (951_782_400, "2000-02-29T00:00:00"),
        (1_709_251_199, "2024-02-29T23:59:59"),
        (1_796_000_521, "2026-11-30T01:02:01"),
        (4_102_444_799, "2099-12-31T23:59:59"),
    ])
    func secondsRenderAsUTCDateAndTime(_ seconds: Int, _ expected: String) {
        #expect(String(decoding: LogTimestamp.render(seconds: seconds), as: UTF8.self) == expected)
    }

    @Test func daysOverFourCenturiesMatchTheGregorianCalendar() {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        // 1601-01-01 (after Foundation's calendar leaves the Julian one) to 2370.
        for day in stride(from: -134_774, through: 146_097, by: 97) {
            let parts = calendar.dateComponents(
                [.year, .month, .day], from: Date(timeIntervalSince1970: Double(day) * 86_400))
            let civil = LogTimestamp.civil(daysSinceEpoch: day)
            #expect(civil.year == parts.year && civil.month == parts.month && civil.day == parts.day, "day \(day)")
        }
    }

    @Test func millisecondsArePaddedAndTheSecondIsReused() {
        var clock = LogTimestamp()
        let first = text { clock.append(seconds: 0, milliseconds: 5, to: &$0) }
        let second = text { clock.append(seconds: 0, milliseconds: 999, to: &$0) }
        let third = text { clock.append(seconds: 61, milliseconds: 40, to: &$0) }
        #expect(first == "1970-01-01T00:00:00.005Z")
        #expect(second == "1970-01-01T00:00:00.999Z")
        #expect(third == "1970-01-01T00:01:01.040Z")
    }

    @Test(arguments: [
        "plain", "quote \" and backslash \\", "line\nbreak\r\ttab", "\u{01}\u{1F}\u{7F}", "é ü 日本 🙂",
        "separators \u{2028} \u{2029}", "\u{E2}\u{80}", "",
    ])
    func jsonStringsAreEscapedAsTheBodiesAre(_ s: String) throws {
        let encoded = text { LogLineEncoding.appendJSONString(s, to: &$0) }
        #expect(!encoded.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F })
        #expect(!encoded.contains("\u{2028}") && !encoded.contains("\u{2029}"))
        let decoded = try JSONSerialization.jsonObject(with: Data("[\(encoded)]".utf8)) as? [String]
        #expect(decoded == [s])
    }

    @Test(arguments: [
        (Duration.microseconds(30_714), "30.71"), (.microseconds(30_715), "30.72"), (.nanoseconds(4_999), "0.00"),
        (.nanoseconds(5_000), "0.01"), (.seconds(2), "2000.00"), (.zero, "0.00"), (.seconds(90_061), "90061000.00"),
    ])
    func millisecondsHaveTwoDecimals(_ d: Duration, _ expected: String) {
        #expect(text { LogLineEncoding.appendMilliseconds(d, to: &$0) } == expected)
    }

    @Test func integersAndAddresses() {
        #expect(text { LogLineEncoding.appendInt(0, to: &$0) } == "0")
        #expect(text { LogLineEncoding.appendInt(-42, to: &$0) } == "-42")
        #expect(text { LogLineEncoding.appendInt(Int.max, to: &$0) } == "\(Int.max)")
        #expect(text { LogLineEncoding.appendInt(Int.min, to: &$0) } == "\(Int.min)")
        #expect(text { LogLineEncoding.appendAddress([127, 0, 0, 1], to: &$0) } == "127.0.0.1")
        #expect(text { LogLineEncoding.appendAddress([10, 200, 3, 255], to: &$0) } == "10.200.3.255")
        #expect(text { LogLineEncoding.appendAddress(IPAddress.parse("::1")!, to: &$0) } == "::1")
    }

    @Test func humanValuesAreBareOnlyWhenPlain() {
        #expect(text { LogLineEncoding.appendHumanString("Acme_API", to: &$0) } == "Acme_API")
        #expect(text { LogLineEncoding.appendHumanString("two words", to: &$0) } == #""two words""#)
        #expect(text { LogLineEncoding.appendHumanString("a=b", to: &$0) } == #""a=b""#)
        #expect(text { LogLineEncoding.appendHumanString("", to: &$0) } == #""""#)
        #expect(text { LogLineEncoding.appendHumanString("x\ny", to: &$0) } == #""x\ny""#)
        #expect(text { LogLineEncoding.appendHumanMessage("msg\nforged line", to: &$0) } == #"msg\nforged line"#)
    }

    // MARK: - The access line

    static func record() -> CalloutLogRecord {
        var r = CalloutLogRecord(
            method: "POST", target: "/callout:Acme/orders/7?api_key=query-secret&x=1", peer: [127, 0, 0, 1])
        r.alias = "Acme"
        r.principal = "Reader"
        r.caller = "billing"
        r.status = 200
        r.upstreamStatus = 200
        r.bytesOut = 1234
        r.tokenUsed(fetched: false)
        return r
    }

    @Test func theJSONAccessLineHasNumbersPathPeerCallerAndTokenSource() throws {
        var clock = LogTimestamp()
        let line = text {
            AccessLine.append(
                Self.record(), duration: .microseconds(30_714), format: .json, label: "callout-proxy", clock: &clock,
                to: &$0)
        }
        #expect(line.hasSuffix("}\n"))
        #expect(line.filter { $0 == "\n" }.count == 1)
        #expect(line.contains(#""status":200,"#))
        #expect(line.contains(#""duration_ms":30.71,"#))
        #expect(!line.contains("query-secret"))
        #expect(!line.contains("?"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["msg"] as? String == "callout")
        #expect(object["level"] as? String == "info")
        #expect(object["label"] as? String == "callout-proxy")
        #expect(object["method"] as? String == "POST")
        #expect(object["path"] as? String == "/callout:Acme/orders/7")
        #expect(object["peer"] as? String == "127.0.0.1")
        #expect(object["caller"] as? String == "billing")
        #expect(object["named_credential"] as? String == "Acme")
        #expect(object["principal"] as? String == "Reader")
        #expect(object["token"] as? String == "cached")
        #expect((object["status"] as? NSNumber)?.intValue == 200)
        #expect((object["upstream_status"] as? NSNumber)?.intValue == 200)
        #expect((object["bytes_out"] as? NSNumber)?.intValue == 1234)
        #expect((object["duration_ms"] as? NSNumber)?.doubleValue == 30.71)
        #expect(object["retried"] as? Bool == false)
        #expect(object["not_replayed"] == nil)
        #expect(object["problem"] == nil)
        let ts = try #require(object["ts"] as? String)
        #expect(ts.count == 24 && ts.hasSuffix("Z"))
    }

    @Test func theHumanAccessLineHasTheSameFields() {
        var clock = LogTimestamp()
        var r = Self.record()
        r.tokenUsed(fetched: true)
        r.problemCode = "upstream_timeout"
        let line = text {
            AccessLine.append(
                r, duration: .milliseconds(5), format: .human, label: "callout-proxy", clock: &clock, to: &$0)
        }
        #expect(line.hasSuffix("\n"))
        #expect(line.contains(" info callout-proxy: callout method=POST path=/callout:Acme/orders/7 status=200 "))
        #expect(line.contains(" duration_ms=5.00 bytes_out=1234 retried=false named_credential=Acme principal=Reader"))
        #expect(
            line.contains(" caller=billing peer=127.0.0.1 upstream_status=200 problem=upstream_timeout token=fetched\n")
        )
        #expect(!line.contains("query-secret"))
    }

    @Test func theTokenSourceIsFetchedOnceAnyAttemptFetched() {
        func token(_ r: CalloutLogRecord) -> String? {
            var found: String? = nil
            AccessLine.fields(r, duration: .zero) { key, value in
                if "\(key)" == "token", case .string(let s) = value { found = s }
            }
            return found
        }
        var r = CalloutLogRecord(method: "GET")
        #expect(token(r) == nil)
        r.tokenUsed(fetched: false)
        #expect(token(r) == "cached")
        r.tokenUsed(fetched: true)
        #expect(token(r) == "fetched")
        r.tokenUsed(fetched: false)
        #expect(token(r) == "fetched")
        #expect(r.path == nil)
        #expect(CalloutLogRecord(method: "GET", target: "http://Acme/a/b?c").path == "http://Acme/a/b")
        #expect(CalloutLogRecord(method: "GET", target: "/callout:Acme").path == "/callout:Acme")
    }

    @Test func aHandlerOtherThanTheLineHandlerGetsNumbersAsNumbers() {
        let captured = MetadataCapture()
        let logger = Logger(label: "other") { _ in captured }
        AccessLogObserver(logger: logger).calloutFinished(Self.record(), duration: .microseconds(1_500))
        let m = captured.metadata
        #expect(m["status"].map { "\($0)" } == "200")
        if case .stringConvertible(let n) = m["status"] { #expect(n as? Int == 200) } else { Issue.record("status") }
        if case .stringConvertible(let d) = m["duration_ms"] {
            #expect(d as? Double == 1.5)
        } else {
            Issue.record("ms")
        }
        #expect(m["peer"] == .string("127.0.0.1"))
        #expect(m["token"] == .string("cached"))
    }

    // MARK: - The process log handler

    @Test func processLinesWriteNumbersBareAndStructuresAsJSON() throws {
        let lines = LockedLines()
        let logger = Logger(label: "callout-proxy") { LineLogHandler(label: $0, write: lines.append) }
        logger.info(
            "started",
            metadata: [
                "count": .stringConvertible(3), "ratio": .stringConvertible(0.5), "on": .stringConvertible(true),
                "name": "Acme", "numeric_text": "42", "list": .array(["a", .stringConvertible(1)]),
                "map": .dictionary(["k": "v"]), "line": "two\nlines",
            ])
        let line = try #require(lines.all.first)
        #expect(line.hasSuffix("}\n") && line.filter { $0 == "\n" }.count == 1)
        #expect(line.contains(#""count":3"#))
        #expect(line.contains(#""numeric_text":"42""#))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect((object["count"] as? NSNumber)?.intValue == 3)
        #expect((object["ratio"] as? NSNumber)?.doubleValue == 0.5)
        #expect(object["on"] as? Bool == true)
        #expect(object["name"] as? String == "Acme")
        #expect(object["line"] as? String == "two\nlines")
        #expect((object["list"] as? [Any])?.count == 2)
        #expect((object["map"] as? [String: String]) == ["k": "v"])
        #expect(object["msg"] as? String == "started")
    }

    @Test func humanProcessLinesKeepOneLinePerEvent() throws {
        let lines = LockedLines()
        let logger = Logger(label: "callout-proxy") {
            LineLogHandler(label: $0, format: .human, sink: ClosureLogSink(write: lines.append))
        }
        logger.warning(
            "reload\nrefused", metadata: ["file": "/etc/callout proxy.conf", "count": .stringConvertible(2)])
        let line = try #require(lines.all.first)
        #expect(
            line.hasSuffix(#" warning callout-proxy: reload\nrefused count=2 file="/etc/callout proxy.conf""# + "\n"))
        #expect(line.filter { $0 == "\n" }.count == 1)
    }
}

final class LockedLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    var all: [String] { lock.withLock { lines } }
    func append(_ line: String) { lock.withLock { lines.append(line) } }
}

/// A log handler that keeps the last event's metadata.
final class MetadataCapture: LogHandler, @unchecked Sendable {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) { metadata = event.metadata ?? [:] }
}
