import CalloutCore
import CalloutDevTools
import Crypto
import Foundation
import NIOCore
import NIOPosix
import Testing

/// Connection reuse on both sides of the proxy, end to end on loopback: pipelined requests on
/// one client connection are answered in order (refusals and request bodies included), callouts
/// share keep-alive upstream connections, and a pooled connection the upstream has closed is
/// replaced without the caller noticing.
@Suite(.serialized) struct ConnectionReuseTests {
    static let identity = "X-Callout-Permission-Sets: Readers\r\n"

    /// A complete `GET` for `/callout:<alias>/<path>` with the identity header.
    static func get(_ path: String, alias: String = "Acme") -> String {
        "GET /callout:\(alias)/\(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(identity)\r\n"
    }

    /// A complete `POST` with a `Content-Length` body.
    static func post(_ path: String, body: String, method: String = "POST") -> String {
        "\(method) /callout:Acme/\(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(identity)Content-Type: text/plain\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    static func sha256(_ text: String) -> String { Hex.encode(SHA256.hash(data: Data(text.utf8))) }

    /// Event loops of the group the harness runs the proxy on (one upstream pool each).
    static var loopCount: Int { Array(MultiThreadedEventLoopGroup.singleton.makeIterator()).count }

    // MARK: - Pipelining

    @Test func pipelinedRequestsInOneWriteAreAnsweredInOrder() async throws {
        try await ProxyHarness.with { h in
            let connection = try await RawConnection.open(port: h.proxyPort)
            defer { connection.close() }
            try await connection.write(Self.get("p1") + Self.get("p2") + Self.get("p3"))
            let responses = await connection.waitForResponses(3)
            #expect(responses.count == 3, "received: \(connection.text)")
            #expect(responses.map(\.status) == [200, 200, 200], "received: \(connection.text)")
            #expect(responses.map { $0.json["path"] as? String } == ["/v2/p1", "/v2/p2", "/v2/p3"])
            #expect(responses.allSatisfy { $0.json["token_valid"] as? Bool == true })
            // Nothing more than the three answers, and the connection stays open for more.
            try await Task.sleep(for: .milliseconds(100))
            #expect(HTTPResponseStream.parse(connection.bytes).leftover == 0, "received: \(connection.text)")
            #expect(!connection.isClosed)
            #expect(h.upstream.requests.map(\.path) == ["/v2/p1", "/v2/p2", "/v2/p3"])

            try await connection.write(Self.get("p4"))
            let more = await connection.waitForResponses(4)
            #expect(more.count == 4)
            #expect(more.last?.status == 200)
            #expect(more.last?.json["path"] as? String == "/v2/p4")
            #expect(h.idp.tokenRequestCount == 1)
        }
    }

    @Test func anUpgradeRequestIsTheConnectionsLast() async throws {
        try await ProxyHarness.with { h in
            let connection = try await RawConnection.open(port: h.proxyPort)
            defer { connection.close() }
            // The proxy does not upgrade; what follows such a request is not read as HTTP, so the
            // request is answered with `Connection: close` and the connection ends there.
            let upgrade =
                "GET /callout:Acme/up HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                + "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\(Self.identity)\r\n"
            try await connection.write(upgrade + Self.get("after"))
            let responses = await connection.waitForResponses(1)
            #expect(responses.first?.status == 200, "received: \(connection.text)")
            #expect(responses.first?.header("connection")?.lowercased() == "close")
            #expect(await connection.waitForClose())
            #expect(HTTPResponseStream.parse(connection.bytes).responses.count == 1)
            // Upgrade and HTTP2-Settings are hop-by-hop / Connection-listed: not forwarded.
            #expect(h.upstream.requests.map(\.path) == ["/v2/up"])
            let forwarded = h.upstream.requests.first?.headers.map { $0.name.lowercased() } ?? []
            #expect(!forwarded.contains("upgrade") && !forwarded.contains("http2-settings"))
        }
    }

    @Test func anOversizeBodyIsRefusedBeforeAnyContinue() async throws {
        try await ProxyHarness.with { h in
            let connection = try await RawConnection.open(port: h.proxyPort)
            defer { connection.close() }
            // Far beyond max_request_body_bytes: 413 at once, never `100 Continue` first.
            try await connection.write(
                "PUT /callout:Acme/big HTTP/1.1\r\nHost: 127.0.0.1\r\n\(Self.identity)Content-Length: 999999999999\r\n"
                    + "Expect: 100-continue\r\n\r\n")
            let responses = await connection.waitForResponses(1)
            #expect(responses.first?.status == 413, "received: \(connection.text)")
            #expect(!connection.text.contains("100 Continue"))
            #expect(h.upstream.requestCount == 0)
        }
    }

    @Test func aRefusedRequestBetweenPipelinedOnesKeepsItsPlace() async throws {
        try await ProxyHarness.with { h in
            let connection = try await RawConnection.open(port: h.proxyPort)
            defer { connection.close() }
            try await connection.write(Self.get("first") + Self.get("x", alias: "Nowhere") + Self.get("third"))
            let responses = await connection.waitForResponses(3)
            #expect(responses.map(\.status) == [200, 404, 200], "received: \(connection.text)")
            #expect(responses.count == 3)
            guard responses.count == 3 else { return }
            #expect(responses[0].json["path"] as? String == "/v2/first")
            #expect(responses[1].json["code"] as? String == "unknown_named_credential")
            #expect(responses[1].header("connection")?.lowercased() != "close")
            #expect(responses[2].json["path"] as? String == "/v2/third")
            #expect(!connection.isClosed)
            // The refusal never reached the upstream.
            #expect(h.upstream.requests.map(\.path) == ["/v2/first", "/v2/third"])
        }
    }

    @Test func pipelinedPostBodyIsNotLostWhileItWaits() async throws {
        try await ProxyHarness.with { h in
            let payload = "pipelined body: \(String(repeating: "0123456789", count: 40))"
            let connection = try await RawConnection.open(port: h.proxyPort)
            defer { connection.close() }
            try await connection.write(Self.get("before") + Self.post("orders", body: payload))
            let responses = await connection.waitForResponses(2)
            #expect(responses.map(\.status) == [200, 200], "received: \(connection.text)")
            guard responses.count == 2 else { return }
            #expect(responses[0].json["path"] as? String == "/v2/before")
            #expect(responses[0].json["method"] as? String == "GET")
            #expect(responses[1].json["path"] as? String == "/v2/orders")
            #expect(responses[1].json["method"] as? String == "POST")
            #expect(responses[1].json["body_bytes"] as? Int == payload.utf8.count)
            #expect(responses[1].json["body_sha256"] as? String == Self.sha256(payload))
            #expect(h.upstream.requests.last?.bodySHA256 == Self.sha256(payload))
        }
    }

    @Test func pipelinedPostWhoseBodyArrivesWhileTheFirstCalloutRuns() async throws {
        try await ProxyHarness.with { h in
            // The first callout is still waiting for its upstream answer when the rest of the
            // second request's body is sent.
            h.upstream.setBehavior(.slowHeaders(seconds: 0.5))
            let payload = String(repeating: "split-body-", count: 300)
            let request = Self.post("split", body: payload)
            let cut = request.utf8.count - payload.utf8.count + 100
            let bytes = Array(request.utf8)
            let connection = try await RawConnection.open(port: h.proxyPort)
            defer { connection.close() }
            try await connection.write(Array(Self.get("slow").utf8) + Array(bytes[..<cut]))
            try await Task.sleep(for: .milliseconds(150))
            try await connection.write(Array(bytes[cut...]))
            let responses = await connection.waitForResponses(2, timeout: .seconds(15))
            #expect(responses.map(\.status) == [200, 200], "received: \(connection.text)")
            guard responses.count == 2 else { return }
            #expect(responses[0].json["path"] as? String == "/v2/slow")
            #expect(responses[1].json["path"] as? String == "/v2/split")
            #expect(responses[1].json["body_bytes"] as? Int == payload.utf8.count)
            #expect(responses[1].json["body_sha256"] as? String == Self.sha256(payload))
        }
    }

    // MARK: - Upstream keep-alive

    @Test func sequentialCalloutsShareOneUpstreamConnection() async throws {
        try await ProxyHarness.with { h in
            let acceptedBefore = h.upstream.acceptedConnectionCount
            let connection = try await RawConnection.open(port: h.proxyPort)
            defer { connection.close() }
            var responses: [HTTPResponseStream.Response] = []
            for i in 1...20 {
                try await connection.write(Self.get("seq/\(i)"))
                responses = await connection.waitForResponses(i)
                guard responses.count == i else { break }
            }
            #expect(responses.count == 20, "received: \(connection.text.suffix(500))")
            #expect(responses.allSatisfy { $0.status == 200 })
            #expect(responses.map { $0.json["path"] as? String } == (1...20).map { "/v2/seq/\($0)" })
            #expect(h.upstream.requestCount == 20)
            // One client connection, one event loop: every callout after the first reused the
            // pooled upstream connection.
            #expect(h.upstream.acceptedConnectionCount - acceptedBefore == 1)
            #expect(await h.service.proxy.openUpstreamConnections() == 1)
            #expect(h.idp.tokenRequestCount == 1)

            // A new client connection per callout: at most one upstream connection per event loop.
            for i in 1...20 {
                let r = try await h.viaProxy(
                    .GET, "http://Acme/fresh/\(i)", headers: [("X-Callout-Permission-Sets", "Readers")])
                #expect(r.status == 200, "\(r.body)")
            }
            let accepted = h.upstream.acceptedConnectionCount - acceptedBefore
            #expect(
                accepted <= Self.loopCount,
                "\(accepted) upstream connections for 40 callouts on \(Self.loopCount) loops")
            #expect(await h.service.proxy.openUpstreamConnections() <= Self.loopCount)
            #expect(h.upstream.requestCount == 40)
            #expect(h.idp.tokenRequestCount == 1)
        }
    }

    // MARK: - Stale pooled connections

    @Test func anUpstreamConnectionClosedWhileIdleIsReplaced() async throws {
        try await ProxyHarness.with { h in
            let connection = try await RawConnection.open(port: h.proxyPort)
            defer { connection.close() }
            try await connection.write(Self.get("warm"))
            #expect(await connection.waitForResponses(1).first?.status == 200)
            #expect(await h.service.proxy.openUpstreamConnections() == 1)

            await h.upstream.closeOpenConnections()
            let noticed = await poll(timeout: .seconds(10)) { await h.service.proxy.openUpstreamConnections() == 0 }
            #expect(noticed, "the pool drops the connection the upstream closed")
            let acceptedBefore = h.upstream.acceptedConnectionCount

            try await connection.write(Self.get("after-idle-close"))
            let responses = await connection.waitForResponses(2)
            #expect(responses.count == 2, "received: \(connection.text)")
            #expect(responses.last?.status == 200, "received: \(connection.text)")
            #expect(responses.last?.json["path"] as? String == "/v2/after-idle-close")
            #expect(h.upstream.acceptedConnectionCount - acceptedBefore == 1)
            #expect(h.upstream.requestCount == 2)
            #expect(h.idp.tokenRequestCount == 1)
            #expect(!connection.isClosed)
        }
    }

    @Test(arguments: [false, true])
    func anIdempotentRequestOnAPooledConnectionTheUpstreamClosedIsRetriedOnceOnAFreshOne(reset: Bool) async throws {
        try await ProxyHarness.with { h in
            let connection = try await RawConnection.open(port: h.proxyPort)
            defer { connection.close() }
            try await connection.write(Self.get("warm"))
            #expect(await connection.waitForResponses(1).first?.status == 200)

            // The pooled connection is closed by the upstream just as the next request goes out.
            h.upstream.closeOpenConnectionsOnNextRequest(reset: reset)
            let acceptedBefore = h.upstream.acceptedConnectionCount
            try await connection.write(Self.get("stale-get"))
            var responses = await connection.waitForResponses(2)
            #expect(responses.count == 2, "received: \(connection.text)")
            #expect(responses.last?.status == 200, "received: \(connection.text)")
            #expect(responses.last?.json["path"] as? String == "/v2/stale-get")
            // Sent twice: dropped on the stale connection, answered on a fresh one.
            #expect(h.upstream.requests.map(\.path) == ["/v2/warm", "/v2/stale-get", "/v2/stale-get"])
            #expect(h.upstream.requests.map(\.status) == [200, 0, 200])
            #expect(h.upstream.acceptedConnectionCount - acceptedBefore == 1)

            // An idempotent request with a small body (PUT) is replayed whole on a fresh connection.
            h.upstream.closeOpenConnectionsOnNextRequest(reset: reset)
            let payload = "replayable body \(reset)"
            try await connection.write(Self.post("stale-put", body: payload, method: "PUT"))
            responses = await connection.waitForResponses(3)
            #expect(responses.count == 3, "received: \(connection.text)")
            #expect(responses.last?.status == 200, "received: \(connection.text)")
            #expect(responses.last?.json["path"] as? String == "/v2/stale-put")
            #expect(responses.last?.json["body_sha256"] as? String == Self.sha256(payload))
            let puts = h.upstream.requests.filter { $0.method == "PUT" }
            #expect(puts.map(\.status) == [0, 200])
            #expect(h.upstream.acceptedConnectionCount - acceptedBefore == 2)

            // A POST is not idempotent: the upstream may have acted on it before the connection
            // went, so it is not sent again (RFC 9110 §9.2.2) and the caller gets the failure.
            h.upstream.closeOpenConnectionsOnNextRequest(reset: reset)
            try await connection.write(Self.post("stale-post", body: payload))
            responses = await connection.waitForResponses(4)
            #expect(responses.count == 4, "received: \(connection.text)")
            #expect(responses.last?.status == 502, "received: \(connection.text)")
            #expect(responses.last?.json["code"] as? String == "upstream_unavailable")
            #expect(h.upstream.requests.filter { $0.method == "POST" }.map(\.status) == [0])
            #expect(h.upstream.acceptedConnectionCount - acceptedBefore == 2)

            // The connection is still good, and the token was not refreshed for any of it.
            #expect(!connection.isClosed)
            #expect(h.idp.tokenRequestCount == 1)
        }
    }

    @Test func theStaleConnectionRetryHappensOnlyOnce() async throws {
        try await ProxyHarness.with { h in
            let connection = try await RawConnection.open(port: h.proxyPort)
            defer { connection.close() }
            try await connection.write(Self.get("warm"))
            #expect(await connection.waitForResponses(1).first?.status == 200)

            // Every connection drops the request: the stale one and the fresh one.
            h.upstream.setBehavior(.closeImmediately)
            let before = h.upstream.requestCount
            try await connection.write(Self.get("dropped"))
            let responses = await connection.waitForResponses(2)
            #expect(responses.count == 2, "received: \(connection.text)")
            #expect(responses.last?.status == 502, "received: \(connection.text)")
            #expect(responses.last?.json["code"] as? String == "upstream_unavailable")
            #expect(h.upstream.requestCount - before == 2)

            h.upstream.setBehavior(.echo)
            try await connection.write(Self.get("recovered"))
            let after = await connection.waitForResponses(3)
            #expect(after.last?.status == 200, "received: \(connection.text)")
            #expect(after.last?.json["path"] as? String == "/v2/recovered")
        }
    }

    @Test func aStreamedBodyIsNotRetriedOnAStaleConnection() async throws {
        // Bodies over 1 KiB are streamed, not buffered for a replay.
        let config = { ProxyHarness.standardConfig($0, proxySettings: "retry_body_buffer_bytes = 1024") }
        try await ProxyHarness.with(config: config) { h in
            let connection = try await RawConnection.open(port: h.proxyPort)
            defer { connection.close() }
            try await connection.write(Self.get("warm"))
            #expect(await connection.waitForResponses(1).first?.status == 200)

            h.upstream.closeOpenConnectionsOnNextRequest()
            let before = h.upstream.requestCount
            try await connection.write(Self.post("streamed", body: String(repeating: "s", count: 4096)))
            let responses = await connection.waitForResponses(2)
            #expect(responses.count == 2, "received: \(connection.text)")
            #expect(responses.last?.status == 502, "received: \(connection.text)")
            #expect(responses.last?.json["code"] as? String == "upstream_unavailable")
            // Not replayable: sent once, on the stale connection only.
            #expect(h.upstream.requestCount - before == 1)
        }
    }
}

// MARK: - Reading several responses from one connection

/// Complete HTTP/1.1 responses at the start of a byte stream (`Content-Length` or chunked
/// bodies; none for 1xx, 204 and 304), and how many bytes follow the last complete one.
enum HTTPResponseStream {
    struct Response {
        let status: Int
        let headers: [(String, String)]
        let body: String

        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        }
    }

    static func parse(_ bytes: [UInt8]) -> (responses: [Response], leftover: Int) {
        var responses: [Response] = []
        var index = 0
        while let (response, next) = parseOne(bytes, from: index) {
            if !(100..<200).contains(response.status) { responses.append(response) }
            index = next
        }
        return (responses, bytes.count - index)
    }

    private static let crlf: [UInt8] = [13, 10]
    private static let headEnd: [UInt8] = [13, 10, 13, 10]

    private static func find(_ needle: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard bytes.count >= needle.count, start <= bytes.count - needle.count else { return nil }
        for i in start...(bytes.count - needle.count) where bytes[i..<(i + needle.count)].elementsEqual(needle) {
            return i
        }
        return nil
    }

    private static func parseOne(_ bytes: [UInt8], from start: Int) -> (Response, Int)? {
        guard let end = find(headEnd, in: bytes, from: start) else { return nil }
        let lines = String(decoding: bytes[start..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusLine = lines[0].split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
        let headers: [(String, String)] = lines.dropFirst().compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name }?.1 }
        var index = end + headEnd.count
        var body: [UInt8] = []
        if (100..<200).contains(status) || status == 204 || status == 304 {
            // No body.
        } else if header("transfer-encoding")?.lowercased().contains("chunked") == true {
            while true {
                guard let lineEnd = find(crlf, in: bytes, from: index) else { return nil }
                let sizeText = String(decoding: bytes[index..<lineEnd], as: UTF8.self).split(separator: ";").first
                guard let size = sizeText.flatMap({ Int($0.trimmingCharacters(in: .whitespaces), radix: 16) })
                else { return nil }
                index = lineEnd + crlf.count
                if size == 0 {
                    // Trailer lines, if any, up to an empty line.
                    while true {
                        guard let lineEnd = find(crlf, in: bytes, from: index) else { return nil }
                        defer { index = lineEnd + crlf.count }
                        if lineEnd == index { break }
                    }
                    break
                }
                guard bytes.count >= index + size + crlf.count else { return nil }
                body += bytes[index..<(index + size)]
                index += size + crlf.count
            }
        } else if let length = header("content-length").flatMap({ Int($0) }) {
            guard bytes.count >= index + length else { return nil }
            body = Array(bytes[index..<(index + length)])
            index += length
        } else {
            // Delimited by the close: complete only as far as it went.
            body = Array(bytes[index...])
            index = bytes.count
        }
        return (Response(status: status, headers: headers, body: String(decoding: body, as: UTF8.self)), index)
    }
}

extension RawConnection {
    /// Waits until `count` complete responses arrived (or the close, or `timeout`); returns those
    /// that did.
    func waitForResponses(_ count: Int, timeout: Duration = .seconds(10)) async -> [HTTPResponseStream.Response] {
        _ = await poll(timeout: timeout) {
            HTTPResponseStream.parse(self.bytes).responses.count >= count || self.isClosed
        }
        return HTTPResponseStream.parse(bytes).responses
    }
}
