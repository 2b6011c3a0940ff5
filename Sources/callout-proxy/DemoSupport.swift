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

/// A minimal HTTP/1.1 client that sends exactly the request target it is given — absolute-form
/// `http://Acme/items` included, as HTTP_PROXY clients do (AsyncHTTPClient would tunnel with
/// CONNECT instead) — over one connection, and collects the answer.
enum DemoHTTPClient {
    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var body: String

        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        }
    }

    struct TimedOut: Error, CustomStringConvertible {
        var description: String { "no answer within 30 s" }
    }

    static func send(
        to address: SocketAddress, method: HTTPMethod, target: String, headers: [(String, String)]
    ) async throws -> Response {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: target, headers: HTTPHeaders(headers))
        head.headers.replaceOrAdd(name: "Connection", value: "close")
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(5))
            .connect(to: address) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel)
                }
            }
        let request = head
        return try await withThrowingTaskGroup(of: Response.self) { group in
            group.addTask {
                try await channel.executeThenClose { inbound, outbound in
                    try await outbound.write(.head(request))
                    try await outbound.write(.end(nil))
                    var response = Response(status: 0, headers: [:], body: "")
                    var collected = ByteBuffer()
                    for try await part in inbound {
                        switch part {
                        case .head(let h):
                            response.status = Int(h.status.code)
                            response.headers = h.headers
                        case .body(var b): collected.writeBuffer(&b)
                        case .end: break
                        }
                    }
                    response.body = String(buffer: collected)
                    return response
                }
            }
            group.addTask {
                try await Task.sleep(for: .seconds(30))
                throw TimedOut()
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { throw TimedOut() }
            return first
        }
    }
}

/// A token shown on screen: a short prefix and an ellipsis, never the token.
func shortToken(_ token: String) -> String {
    String(token.prefix(8)) + "… (truncated)"
}
