import CalloutCore
import CalloutDevTools
import CalloutTestSupport
import Foundation
import NIOCore
import Testing

@testable import CalloutServer

/// Faults at the identity provider, the upstream and the client, end to end on loopback: each
/// gets a clear answer within the configured time, nothing leaks, and the proxy recovers
/// without a restart.
@Suite(.serialized) struct FaultMatrixTests {
    static let readers = ("X-Callout-Permission-Sets", "Readers")

    /// Short timeouts; `Gone` points at a closed port, `NoIdP` at a credential whose identity
    /// provider port is closed. The header read limit is generous unless a test is about it: on
    /// a loaded machine a client may take over a second between connecting and writing its head.
    static func faultConfig(
        _ env: LocalEnvironment, closedPort: Int, headerReadTimeout: Int = 15, proxySettings: String = ""
    ) -> String {
        ProxyHarness.standardConfig(
            env,
            proxySettings: """
                request_timeout_seconds = 5
                connect_timeout_seconds = 2
                header_read_timeout_seconds = \(headerReadTimeout)
                \(proxySettings)
                """,
            extra: """
                [[named_credential]]
                name = "Gone"
                url = "https://127.0.0.1:\(closedPort)/v2"
                external_credential = "Acme_API"

                [[external_credential]]
                name = "Closed_IdP"
                identity_provider_url = "https://127.0.0.1:\(closedPort)/oauth2/token"
                signing_certificate = "Local_Signing"

                  [[external_credential.principal]]
                  name = "Reader"
                  sequence_number = 1
                  client_id = "acme-reader"
                  permission_sets = ["Readers"]

                [[named_credential]]
                name = "NoIdP"
                url = "\(env.upstream.baseURL)/v2"
                external_credential = "Closed_IdP"
                """)
    }

    static func withFaultHarness(
        headerReadTimeout: Int = 15, proxySettings: String = "", _ body: (ProxyHarness) async throws -> Void
    ) async throws {
        // Refuses connections until the test ends; no parallel test can take the port meanwhile.
        let refusing = try RefusingPort()
        defer { withExtendedLifetime(refusing) {} }
        let closed = refusing.port
        try await ProxyHarness.with(
            config: {
                faultConfig($0, closedPort: closed, headerReadTimeout: headerReadTimeout, proxySettings: proxySettings)
            }, body)
    }

    /// Asks until the answer is 200 (the backoff has passed and the identity provider answers),
    /// at most ~15 s. Returns the last response.
    static func eventuallyOK(_ h: ProxyHarness, headers: [(String, String)]) async throws -> ProxyHarness.Response {
        var last = try await h.viaProxy(.GET, "http://Acme/recover", headers: headers)
        for _ in 0..<60 where last.status != 200 {
            try await Task.sleep(for: .milliseconds(250))
            last = try await h.viaProxy(.GET, "http://Acme/recover", headers: headers)
        }
        return last
    }

    // MARK: - Identity provider

    @Test func identityProviderFaultsAnswerClearlyAndRecoverWithoutRestart() async throws {
        try await Self.withFaultHarness { h in
            let cases: [(name: String, fault: DevelopmentIdentityProvider.Fault, status: Int, code: String)] = [
                ("500", .serverError(500), 503, "identity_provider_unavailable"),
                ("503", .serverError(503), 503, "identity_provider_unavailable"),
                ("429", .tooManyRequests(retryAfter: 1), 503, "identity_provider_unavailable"),
                ("invalid_client", .oauthError(status: 400, error: "invalid_client"), 502, "token_exchange_failed"),
                ("malformed JSON", .malformedJSON, 502, "token_exchange_failed"),
                ("no access_token", .missingAccessToken, 502, "token_exchange_failed"),
                ("expires_in 0", .expiresIn(0), 502, "token_exchange_failed"),
                ("expires_in negative", .expiresIn(-30), 502, "token_exchange_failed"),
                ("connection closed", .closeConnection, 502, "identity_provider_unavailable"),
                ("hangs past the timeout", .slow(seconds: 20), 504, "identity_provider_unavailable"),
            ]
            var outputs: [String] = []
            for (index, c) in cases.enumerated() {
                // A scope of its own per case, so each starts with an empty cache entry.
                let headers = [Self.readers, ("X-Callout-User-Department", "Case\(index)")]
                let upstreamBefore = h.upstream.requestCount
                h.idp.setFault(c.fault)
                let failed = try await h.viaProxy(.GET, "http://Acme/f", headers: headers)
                #expect(failed.status == c.status, "\(c.name): \(failed.body)")
                #expect(failed.json["code"] as? String == c.code, "\(c.name)")
                #expect(failed.headers.first(name: "content-type") == "application/problem+json", "\(c.name)")
                #expect(h.upstream.requestCount == upstreamBefore, "\(c.name): nothing forwarded without a token")
                if c.name == "429" {
                    #expect(failed.headers.first(name: "retry-after") == "1", "429 passes Retry-After on")
                    // While backing off, callers fail fast and are told when to come back.
                    let fast = try await h.viaProxy(.GET, "http://Acme/f", headers: headers)
                    #expect(fast.status == 503)
                    #expect(fast.headers.first(name: "retry-after") != nil)
                    outputs.append(fast.body)
                }
                outputs.append(failed.body)
                h.idp.setFault(.none)
                let recovered = try await Self.eventuallyOK(h, headers: headers)
                #expect(recovered.status == 200, "\(c.name): no recovery: \(recovered.body)")
                #expect(recovered.json["token_valid"] as? Bool == true, "\(c.name)")
            }
            // A huge lifetime is capped, and the token works.
            h.idp.setFault(.expiresIn(Int(Int32.max)))
            let huge = try await h.viaProxy(
                .GET, "http://Acme/f", headers: [Self.readers, ("X-Callout-User-Department", "Huge")])
            #expect(huge.status == 200, "\(huge.body)")
            h.idp.setFault(.none)
            // No token the identity provider does not consider valid ever reached the upstream.
            #expect(h.upstream.requests.allSatisfy { $0.status == 200 })
            try h.expectNoSecretsLeaked(in: outputs)
        }
    }

    @Test func identityProviderConnectionRefused() async throws {
        try await Self.withFaultHarness { h in
            let r = try await h.viaProxy(.GET, "http://NoIdP/a", headers: [Self.readers])
            #expect(r.status == 502, "\(r.body)")
            #expect(r.json["code"] as? String == "identity_provider_unavailable")
            #expect((r.json["detail"] as? String)?.contains("refused") == true, "\(r.body)")
            #expect(h.upstream.requestCount == 0)
            // Backing off: the next caller is answered at once, with Retry-After.
            let again = try await h.viaProxy(.GET, "http://NoIdP/a", headers: [Self.readers])
            #expect(again.json["code"] as? String == "identity_provider_unavailable")
            // Other credentials are unaffected.
            #expect(try await h.viaProxy(.GET, "http://Acme/a", headers: [Self.readers]).status == 200)
            try h.expectNoSecretsLeaked(in: [r.body, again.body])
        }
    }

    @Test func identityProviderWithUntrustedCertificate() async throws {
        // Refuses connections until the test ends; no parallel test can take the port meanwhile.
        let refusing = try RefusingPort()
        defer { withExtendedLifetime(refusing) {} }
        let closed = refusing.port
        try await ProxyHarness.with(config: { env in
            // Without ca_file the development CA is not trusted: the TLS handshake fails.
            Self.faultConfig(env, closedPort: closed).split(separator: "\n", omittingEmptySubsequences: false)
                .filter { !$0.hasPrefix("ca_file") }.joined(separator: "\n")
        }) { h in
            let r = try await h.viaProxy(.GET, "http://Acme/a", headers: [Self.readers])
            #expect(r.status == 502, "\(r.body)")
            #expect(r.json["code"] as? String == "identity_provider_unavailable")
            #expect((r.json["detail"] as? String)?.contains("TLS") == true, "\(r.body)")
            #expect(h.idp.tokenRequestCount == 0)
            #expect(h.upstream.requestCount == 0)
            try h.expectNoSecretsLeaked(in: [r.body])
        }
    }

    // MARK: - Upstream

    @Test func upstreamFaults() async throws {
        let elsewhere = try await CountingListener.start()
        defer { Task { await elsewhere.stop() } }
        try await Self.withFaultHarness { h in
            var outputs: [String] = []
            // Connection refused.
            let refused = try await h.viaProxy(.GET, "http://Gone/a", headers: [Self.readers])
            #expect(refused.status == 502, "\(refused.body)")
            #expect(refused.json["code"] as? String == "upstream_unavailable")
            outputs.append(refused.body)

            // Headers slower than request_timeout_seconds.
            h.upstream.setBehavior(.slowHeaders(seconds: 20))
            let slow = try await h.viaProxy(.GET, "http://Acme/slow", headers: [Self.readers])
            #expect(slow.status == 504, "\(slow.body)")
            #expect(slow.json["code"] as? String == "upstream_timeout")
            outputs.append(slow.body)

            // A slow body within the timeout arrives whole.
            h.upstream.setBehavior(.slowBody(chunks: 4, delay: 0.2))
            let trickle = try await h.viaProxy(.GET, "http://Acme/trickle", headers: [Self.readers])
            #expect(trickle.status == 200)
            #expect(trickle.json["path"] as? String == "/v2/trickle", "\(trickle.body.prefix(200))")

            // Reset after the head: the caller's connection ends, the proxy carries on.
            h.upstream.setBehavior(.resetAfterHead)
            let reset = try await RawConnection.open(port: h.proxyPort)
            try await reset.write(
                "GET /callout:Acme/reset HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Callout-Permission-Sets: Readers\r\n\r\n")
            #expect(await reset.waitForClose(), "the caller's connection is closed after an upstream reset")
            reset.close()
            h.upstream.setBehavior(.echo)
            #expect(try await h.viaProxy(.GET, "http://Acme/after-reset", headers: [Self.readers]).status == 200)

            // 401 forever: one refresh, one replay, then the 401 goes back.
            h.upstream.setBehavior(.unauthorizedForever)
            let upstreamBefore = h.upstream.requestCount
            let idpBefore = h.idp.tokenRequestCount
            let unauthorized = try await h.viaProxy(.GET, "http://Acme/401", headers: [Self.readers])
            #expect(unauthorized.status == 401)
            #expect(h.upstream.requestCount == upstreamBefore + 2)
            #expect(h.idp.tokenRequestCount == idpBefore + 1)

            // Refused again within min_token_refresh_interval_seconds: the refresh storm guard
            // hands the 401 back without another identity provider call or replay.
            let again = try await h.viaProxy(.GET, "http://Acme/401-again", headers: [Self.readers])
            #expect(again.status == 401)
            #expect(h.upstream.requestCount == upstreamBefore + 3)
            #expect(h.idp.tokenRequestCount == idpBefore + 1)

            // A refresh status while the identity provider is down: its error, not the 401.
            // (A token fetched on demand, not after a refusal, so the guard does not hold it.)
            h.service.tokens.cache.invalidateAll { _ in true }
            h.upstream.setBehavior(.echo)
            #expect(try await h.viaProxy(.GET, "http://Acme/warm", headers: [Self.readers]).status == 200)
            h.upstream.setBehavior(.unauthorizedForever)
            h.idp.setFault(.serverError(503))
            let down = try await h.viaProxy(.GET, "http://Acme/401-idp-down", headers: [Self.readers])
            #expect(down.status == 503, "\(down.body)")
            #expect(down.json["code"] as? String == "identity_provider_unavailable")
            outputs.append(down.body)
            h.idp.setFault(.none)
            h.upstream.setBehavior(.echo)
            // Once the backoff has passed, callouts work again.
            #expect(try await Self.eventuallyOK(h, headers: [Self.readers]).status == 200)

            // A redirect to another host goes back to the caller, never followed.
            h.upstream.setBehavior(.redirect(to: "https://127.0.0.1:\(elsewhere.port)/steal"))
            let redirect = try await h.viaProxy(.GET, "http://Acme/r", headers: [Self.readers])
            #expect(redirect.status == 302)
            #expect(redirect.headers.first(name: "location") == "https://127.0.0.1:\(elsewhere.port)/steal")
            h.upstream.setBehavior(.echo)
            try await Task.sleep(for: .milliseconds(200))
            #expect(elsewhere.count == 0, "the redirect target was contacted")
            // (The body is the echo upstream's description of the request, token included: the
            // upstream's own output, so only the headers are checked.)
            outputs.append(redirect.headers.map { "\($0.name): \($0.value)" }.joined(separator: "\n"))
            try h.expectNoSecretsLeaked(in: outputs)
        }
    }

    // MARK: - Client

    @Test func clientsThatDisconnectMidRequestOrMidResponseLeakNothing() async throws {
        try await Self.withFaultHarness { h in
            // Warm the token and the upstream pool, then measure.
            #expect(try await h.viaProxy(.GET, "http://Acme/warm", headers: [Self.readers]).status == 200)
            let before = residentBytes()
            let total = 10_000
            let batch = 50
            for start in stride(from: 0, to: total, by: batch) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for i in start..<min(start + batch, total) {
                        group.addTask {
                            let c = try await RawConnection.open(port: h.proxyPort)
                            defer { c.close() }
                            let head = "X-Callout-Permission-Sets: Readers\r\nHost: 127.0.0.1\r\n"
                            // Every 50th a streamed body past the replay buffer; the rest alternate.
                            switch i % 50 == 1 ? 1 : (i % 2 == 0 ? 0 : 2) {
                            case 0:
                                // Mid-request: the body never finishes.
                                try await c.write(
                                    "POST /callout:Acme/up HTTP/1.1\r\n\(head)Content-Length: 100000\r\n\r\n"
                                        + String(repeating: "x", count: 1000))
                            case 1:
                                // Mid-request, streaming: more than the replay buffer announced.
                                try await c.write(
                                    "PUT /callout:Acme/up HTTP/1.1\r\n\(head)Content-Length: 4194304\r\n\r\n")
                                try await c.write(Array(repeating: UInt8(ascii: "y"), count: 1_200_000))
                            default:
                                // Mid-response: a large download, dropped after the first bytes.
                                try await c.write(
                                    "GET /callout:Acme/dl?respond_bytes=8388608 HTTP/1.1\r\n\(head)\r\n")
                                _ = await c.waitForBytes(1, timeout: .seconds(10))
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            let drained = await poll(timeout: .seconds(20)) { h.service.proxy.openConnections == 0 }
            #expect(drained, "\(h.service.proxy.openConnections) connections still open")
            let growth = residentBytes() - before
            #expect(growth < 256 << 20, "resident memory grew by \(growth >> 20) MiB over \(total) aborted callouts")
            // Still healthy.
            #expect(try await h.viaProxy(.GET, "http://Acme/after", headers: [Self.readers]).status == 200)
            try h.expectNoSecretsLeaked(in: [])
        }
    }

    @Test func slowlorisConnectionsAreClosedAfterTheHeaderReadTimeout() async throws {
        try await Self.withFaultHarness(headerReadTimeout: 1, proxySettings: "idle_timeout_seconds = 2") { h in
            // A partial head, then nothing.
            let stalled = try await RawConnection.open(port: h.proxyPort)
            try await stalled.write("GET /callout:Acme/a HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Callout-Permission-Sets: Re")
            // A head trickled one byte at a time never completes either.
            let trickle = try await RawConnection.open(port: h.proxyPort)
            let head = Array("GET /callout:Acme/a HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".utf8)
            for byte in head.prefix(30) {
                guard !trickle.isClosed else { break }
                try? await trickle.write([byte])
                try await Task.sleep(for: .milliseconds(100))
            }
            // A complete head, then a body that stalls (closed after idle_timeout_seconds = 2).
            let slowBody = try await RawConnection.open(port: h.proxyPort)
            try await slowBody.write(
                "POST /callout:Acme/a HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Callout-Permission-Sets: Readers\r\n"
                    + "Content-Length: 100\r\n\r\n0123456789")
            // header_read_timeout_seconds = 1.
            #expect(await stalled.waitForClose(timeout: .seconds(10)))
            #expect(await trickle.waitForClose(timeout: .seconds(10)))
            #expect(await slowBody.waitForClose(timeout: .seconds(10)), "a stalled body holds the connection")
            #expect(h.upstream.requestCount == 0)
            #expect(await poll(timeout: .seconds(5)) { h.service.proxy.openConnections == 0 })
        }
    }

    @Test func aBodyTrickledSlowerThanTheMinimumRateIsCutOff() async throws {
        // The idle limit alone never fires: a byte comes every 200 ms. The body deadline does.
        let settings = "idle_timeout_seconds = 60\nrequest_body_timeout_seconds = 1"
        try await Self.withFaultHarness(headerReadTimeout: 60, proxySettings: settings) { h in
            let trickle = try await RawConnection.open(port: h.proxyPort)
            try await trickle.write(
                "POST /callout:Acme/a HTTP/1.1\r\nHost: proxy\r\nX-Callout-Permission-Sets: Readers\r\n"
                    + "Content-Length: 100\r\n\r\n")
            var sent = 0
            for _ in 0..<50 {
                guard !trickle.isClosed else { break }
                try? await trickle.write("x")
                sent += 1
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(await trickle.waitForClose(timeout: .seconds(10)), "a trickled body holds the connection")
            #expect(sent < 50)
            #expect(h.upstream.requestCount == 0)
        }
    }

    @Test func theBodyDeadlineGrowsWithTheBytesReceived() {
        let start = NIODeadline.uptimeNanoseconds(0)
        let rule = BodyDeadline(timeout: .seconds(30), minBytesPerSecond: 1024)
        let idle = start + .seconds(1000)
        #expect(rule.limit(idle, bodyStarted: start, bodyBytes: 0) == start + .seconds(30))
        #expect(rule.limit(idle, bodyStarted: start, bodyBytes: 10 * 1024) == start + .seconds(40))
        // The idle limit still applies when it comes first.
        #expect(rule.limit(start + .seconds(5), bodyStarted: start, bodyBytes: 0) == start + .seconds(5))
        #expect(BodyDeadline.off.limit(idle, bodyStarted: start, bodyBytes: 0) == idle)
    }

    @Test func idleConnectionsUpToMaxConnectionsAreAcceptedAndTheNextIsClosed() async throws {
        let count = 1_000
        guard openFileLimit() >= count * 2 + 256 else {
            print("skipped: ulimit -n is \(openFileLimit()), needs \(count * 2 + 256) for \(count) loopback pairs")
            return
        }
        try await Self.withFaultHarness(headerReadTimeout: 60, proxySettings: "max_connections = \(count)") { h in
            var connections: [RawConnection] = []
            for start in stride(from: 0, to: count, by: 100) {
                try await withThrowingTaskGroup(of: RawConnection.self) { group in
                    for _ in start..<min(start + 100, count) {
                        group.addTask { try await RawConnection.open(port: h.proxyPort) }
                    }
                    for try await c in group { connections.append(c) }
                }
            }
            defer { for c in connections { c.close() } }
            let allOpen = await poll(timeout: .seconds(20)) { h.service.proxy.openConnections == count }
            #expect(allOpen, "\(h.service.proxy.openConnections) of \(count) accepted")
            #expect(connections.allSatisfy { !$0.isClosed })
            // One more is closed at once.
            let extra = try await RawConnection.open(port: h.proxyPort)
            #expect(await extra.waitForClose(timeout: .seconds(10)), "connection beyond max_connections stays open")
            // An admitted connection serves a callout.
            let last = connections[connections.count - 1]
            try await last.write(
                "GET /callout:Acme/a HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Callout-Permission-Sets: Readers\r\nConnection: close\r\n\r\n"
            )
            let answered = await last.waitForResponse()
            #expect(answered?.status == 200)
            for c in connections { c.close() }
            #expect(await poll(timeout: .seconds(20)) { h.service.proxy.openConnections == 0 })
        }
    }

    /// The full count: 10,000 idle connections, held by another process so that the two
    /// ends do not share this process's file descriptors.
    @Test func tenThousandIdleConnectionsFromAnotherProcessStayWithinTheLimit() async throws {
        let count = 10_000
        guard openFileLimit() >= count + 1_024 else {
            print("skipped: ulimit -n is \(openFileLimit()), needs \(count + 1_024)")
            return
        }
        try await Self.withFaultHarness(headerReadTimeout: 120, proxySettings: "max_connections = \(count)") { h in
            let holder = Process()
            holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            holder.arguments = [
                "python3", "-c",
                """
                import socket, sys
                n, port = int(sys.argv[1]), int(sys.argv[2])
                held = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
                sys.stdin.read()
                """,
                String(count), String(h.proxyPort),
            ]
            let input = Pipe()
            holder.standardInput = input
            holder.standardOutput = FileHandle.nullDevice
            holder.standardError = FileHandle.nullDevice
            try holder.run()
            defer { if holder.isRunning { holder.terminate() } }
            let allOpen = await poll(timeout: .seconds(90)) { h.service.proxy.openConnections == count }
            #expect(allOpen, "\(h.service.proxy.openConnections) of \(count) accepted")
            // One more is closed at once.
            let extra = try await RawConnection.open(port: h.proxyPort)
            #expect(await extra.waitForClose(timeout: .seconds(10)), "connection beyond max_connections stays open")
            // The holder lets go: every connection is released.
            try input.fileHandleForWriting.close()
            #expect(await poll(timeout: .seconds(60)) { h.service.proxy.openConnections == 0 })
            // And the proxy still serves.
            #expect(try await h.viaProxy(.GET, "http://Acme/after", headers: [Self.readers]).status == 200)
        }
    }
}
