import CalloutDevTools
import Foundation
import Testing

/// An answer sent before the request was read to its end reaches the client: the proxy shuts down
/// its side and reads and drops the rest, within `lingering_close_seconds` and
/// `lingering_close_max_bytes`, instead of closing with unread bytes (a connection reset).
@Suite struct LingeringCloseTests {
    static let prefix = "Host: 127.0.0.1\r\nX-Callout-Permission-Sets: Readers\r\n"

    static func config(_ settings: String) -> @Sendable (LocalEnvironment) -> String {
        { env in ProxyHarness.standardConfig(env, proxySettings: settings) }
    }

    /// 200 KB of headers in one write, far past `max_header_bytes`.
    static let hugeHead =
        "GET /callout:Acme/a HTTP/1.1\r\n" + prefix
        + (0..<2000).map { "X-H\($0): \(String(repeating: "b", count: 100))\r\n" }.joined() + "\r\n"

    @Test func aHeadFarPastTheLimitInOneWriteGets431NotAReset() async throws {
        try await ProxyHarness.with(config: Self.config("")) { h in
            for _ in 0..<3 {
                let connection = try await RawConnection.open(port: h.proxyPort)
                defer { connection.close() }
                try? await connection.write(Self.hugeHead)
                let response = await connection.waitForResponse()
                #expect(response?.status == 431, "\(connection.text.prefix(200))")
                #expect(response?.header("connection") == "close")
                #expect(await connection.waitForClose(), "the proxy ends the connection once the client has")
            }
        }
    }

    @Test func a413BeforeTheBodyIsReadReachesTheClient() async throws {
        try await ProxyHarness.with(config: Self.config("max_request_body_bytes = 65536")) { h in
            let connection = try await RawConnection.open(port: h.proxyPort)
            defer { connection.close() }
            let body = String(repeating: "x", count: 512 * 1024)
            try? await connection.write(
                "POST /callout:Acme/a HTTP/1.1\r\n" + Self.prefix + "Content-Length: \(body.utf8.count)\r\n\r\n" + body)
            let response = await connection.waitForResponse()
            #expect(response?.status == 413, "\(connection.text.prefix(200))")
            #expect(h.upstream.requestCount == 0)
        }
    }

    @Test func lingeringEndsAtItsLimitsWhenTheClientKeepsSending() async throws {
        let settings = "lingering_close_seconds = 1\nlingering_close_max_bytes = 65536"
        try await ProxyHarness.with(config: Self.config(settings)) { h in
            // A client that never closes: the time limit ends it.
            let quiet = try await RawConnection.open(port: h.proxyPort)
            defer { quiet.close() }
            try? await quiet.write(Self.hugeHead)
            #expect(await quiet.waitForResponse()?.status == 431)
            #expect(await quiet.waitForClose(timeout: .seconds(15)), "still open after the lingering time")
            // A client that goes on sending: the byte limit ends it.
            let talker = try await RawConnection.open(port: h.proxyPort)
            defer { talker.close() }
            try? await talker.write(Self.hugeHead)
            #expect(await talker.waitForResponse()?.status == 431)
            try? await talker.write(Array(repeating: UInt8(ascii: "z"), count: 256 * 1024))
            #expect(await talker.waitForClose(timeout: .seconds(15)))
            #expect(await poll(timeout: .seconds(10)) { h.service.proxy.openConnections == 0 })
        }
    }

    /// curl, as a user runs it: a body it streams without waiting (no `Expect`), refused with 413
    /// at its head, and a head far past the limit. curl must read the answer, not a reset.
    @Test func curlReadsEarlyAnswersWhileItIsStillSending() async throws {
        try await ProxyHarness.with(config: Self.config("max_request_body_bytes = 65536")) { h in
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("linger-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let body = folder.appendingPathComponent("body")
            try Data(repeating: 0x78, count: 16 << 20).write(to: body)
            let headers = folder.appendingPathComponent("headers")
            try (0..<2000).map { "X-H\($0): \(String(repeating: "b", count: 100))" }.joined(separator: "\n")
                .write(to: headers, atomically: true, encoding: .utf8)
            let common = [
                "-sS", "--max-time", "30", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                "X-Callout-Permission-Sets: Readers",
            ]
            for _ in 0..<3 {
                let post = try await ProxyHarness.run(
                    "curl",
                    common + ["-H", "Expect:", "--data-binary", "@\(body.path)", h.proxyURL + "/callout:Acme/p"])
                #expect(post.output.hasSuffix("413"), "\(post.output)")
                let head = try await ProxyHarness.run(
                    "curl", common + ["-H", "@\(headers.path)", h.proxyURL + "/callout:Acme/h"])
                #expect(head.output.hasSuffix("431"), "\(head.output)")
            }
            #expect(h.upstream.requestCount == 0)
        }
    }

    @Test func zeroTurnsLingeringOff() async throws {
        try await ProxyHarness.with(config: Self.config("lingering_close_seconds = 0")) { h in
            let connection = try await RawConnection.open(port: h.proxyPort)
            defer { connection.close() }
            try? await connection.write("GET /callout:Acme/a HTTP/9.9\r\n" + Self.prefix + "\r\n")
            #expect(await connection.waitForResponse()?.status == 400)
            #expect(await connection.waitForClose(timeout: .seconds(30)))
        }
    }
}
