import AsyncHTTPClient
import CalloutCore
import CalloutDevTools
import Crypto
import Foundation
import NIOCore
import Testing

@testable import CalloutServer

/// `access_log`: the access line's fields through the running proxy, a file of its own, `off`,
/// and the dropped-lines metric.
@Suite(.serialized) struct AccessLogTests {
    static func callerHex(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static func jsonLines(_ text: String) -> [[String: Any]] {
        text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    @Test func aFileGetsOneLinePerCalloutWithPathPeerCallerAndTokenSource() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("access-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("access.log").path
        let secret = "caller-secret-\(UUID().uuidString)"
        try await OpsHarness.with(config: {
            OpsHarness.config(
                $0, proxySettings: "access_log = \"\(path)\"",
                extra: """
                    [[caller]]
                    name = "billing"
                    token_sha256 = "\(Self.callerHex(secret))"
                    permission_sets = ["Readers"]
                    """)
        }) { h in
            let caller = [("Proxy-Authorization", "Bearer \(secret)")]
            #expect(try await h.callout("/callout:Acme/orders/1?api_key=query-secret-1", headers: caller).status == 200)
            #expect(try await h.callout("/callout:Acme/orders/2?api_key=query-secret-2", headers: caller).status == 200)
            #expect(try await h.callout("/callout:Nope/x?q=query-secret-3").status == 404)
            let writer = try #require(h.service.accessLogFile)
            // The last line is written just after its answer: wait (bounded) for all three.
            var text = ""
            for _ in 0..<200 {
                writer.flush()
                text = try String(contentsOfFile: path, encoding: .utf8)
                if Self.jsonLines(text).count == 3 { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            let lines = Self.jsonLines(text)
            try #require(lines.count == 3)
            #expect(
                lines.map { $0["path"] as? String } == [
                    "/callout:Acme/orders/1", "/callout:Acme/orders/2", "/callout:Nope/x",
                ])
            #expect(lines.map { $0["token"] as? String } == ["fetched", "cached", nil])
            #expect(lines.map { ($0["status"] as? NSNumber)?.intValue } == [200, 200, 404])
            #expect(lines[0]["caller"] as? String == "billing")
            #expect(lines[0]["peer"] as? String == "127.0.0.1")
            #expect(lines[0]["principal"] as? String == "Reader")
            #expect(lines[2]["problem"] as? String == "unknown_named_credential")
            #expect(lines[2]["caller"] == nil)
            #expect(lines.allSatisfy { $0["duration_ms"] is NSNumber && $0["msg"] as? String == "callout" })
            for s in ["query-secret", secret, "Bearer"] { #expect(!text.contains(s), "\(s)") }
            // The access lines went to the file only; the process log keeps its own lines.
            #expect(!h.logs.lines.contains { $0.contains(#""msg":"callout""#) })
        }
    }

    @Test func offWritesNoAccessLine() async throws {
        try await OpsHarness.with(config: { OpsHarness.config($0, proxySettings: "access_log = \"off\"") }) {
            (h: OpsHarness) async throws in
            #expect(try await h.callout("/callout:Acme/a").status == 200)
            #expect(h.service.accessLogFile == nil)
            #expect(!h.logs.lines.contains { $0.contains(#""msg":"callout""#) })
        }
    }

    @Test func standardErrorIsTheDefaultAndCarriesTheNewFields() async throws {
        try await OpsHarness.with { h in
            #expect(try await h.callout("/callout:Acme/a?token=query-secret").status == 200)
            var line: [String: Any]? = nil
            for _ in 0..<200 {
                line = Self.jsonLines(h.logs.text).first { $0["msg"] as? String == "callout" }
                if line != nil { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            let access = try #require(line)
            #expect(access["path"] as? String == "/callout:Acme/a")
            #expect(access["peer"] as? String == "127.0.0.1")
            #expect(access["token"] as? String == "fetched")
            #expect((access["status"] as? NSNumber)?.intValue == 200)
            #expect(!h.logs.text.contains("query-secret"))
        }
    }

    @Test func droppedLinesAreCountedAtScrapeTimeAndNeverGoBack() {
        let metrics = ProxyMetrics()
        let total = LockedCount()
        metrics.countDroppedLogLines { total.value }
        func scraped() -> Double? {
            OpsHarness.metric(
                ProxyMetrics.Name.logLinesDropped, in: metrics.scrape(cache: .init(), openConnections: 0))
        }
        #expect(scraped() == 0)
        total.value = 7
        #expect(scraped() == 7)
        #expect(scraped() == 7)
        total.value = 3
        #expect(scraped() == 7)
        total.value = 9
        #expect(scraped() == 9)
    }
}

final class LockedCount: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int {
        get { lock.withLock { count } }
        set { lock.withLock { count = newValue } }
    }
}
