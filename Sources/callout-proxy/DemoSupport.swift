import CalloutServer
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// Collects what the proxy did for each callout; after the sample, prints one line per callout.
final class DemoObserver: CalloutObserver, @unchecked Sendable {
    private let lock = NSLock()
    private var records: [CalloutLogRecord] = []
    private var printer: (@Sendable (String) -> Void)?

    var count: Int { lock.withLock { records.count } }

    func record(at index: Int) -> CalloutLogRecord? {
        lock.withLock { index < records.count ? records[index] : nil }
    }

    /// From now on, prints a line per callout (principal, token fetched or cached, status).
    func startAccessLog(say: @escaping @Sendable (String) -> Void) {
        lock.withLock { printer = say }
    }

    /// The record of callout number `index` (0-based); the proxy writes it just after answering,
    /// so this waits for it a little (bounded: 10 s).
    func waitForRecord(at index: Int) async -> CalloutLogRecord? {
        for _ in 0..<1000 {
            if let r = record(at: index) { return r }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    func calloutFinished(_ record: CalloutLogRecord, duration: Duration) {
        let emit = lock.withLock {
            records.append(record)
            return self.printer
        }
        guard let emit else { return }
        var line = "callout \(record.method) \(record.alias ?? "-")"
        if let p = record.principal { line += " principal=\(p)" }
        line += record.tokenFetched ? " token=fetched" : (record.principal == nil ? "" : " token=cached")
        if record.retried { line += " retried=true" }
        line += " status=\(record.status.map(String.init) ?? "-")"
        if let code = record.problemCode { line += " problem=\(code)" }
        emit(line)
    }

    func upstreamResponded(namedCredential: String, duration: Duration) {}
    func refreshNotReplayed(namedCredential: String) {}
    func connectionRejected() {}
}

/// A token shown on screen: a short prefix and an ellipsis, never the token.
func shortToken(_ token: String) -> String {
    String(token.prefix(8)) + "… (truncated)"
}
