import CalloutCore
import CalloutDevTools
import Foundation
import NIOCore
import Testing

/// What a web page, a TRACE-happy upstream or a formula-writing caller could get out of the
/// proxy: DNS-rebound Host values, TRACE and Max-Forwards, `..;` segments, Host framing, the
/// token as a formula oracle, `$User` data widening a scope, and response headers for the
/// proxy's own hop. Raw TCP, loopback only.
@Suite(.serialized) struct HostileBrowserTests {
    static let readers = "X-Callout-Permission-Sets: Readers\r\n"
    static let close = "Connection: close\r\n\r\n"

    @Test func aReboundBrowserIsMisdirectedAndTheProxyStillAnswersItsOwnNames() async throws {
        try await ProxyHarness.with(config: HostileInputTests.hostileConfig) { h in
            let get = "GET /callout:Acme/items HTTP/1.1\r\n"
            typealias Case = HostileInputTests.Case
            let cases = [
                Case(
                    name: "rebound name",
                    bytes: get + "Host: attacker.example:\(h.proxyPort)\r\n" + Self.readers + Self.close,
                    status: 421, code: "misdirected_request"),
                Case(
                    name: "rebound name, host form",
                    bytes: "GET /items HTTP/1.1\r\nHost: attacker.example\r\n" + Self.readers + Self.close,
                    status: 421, code: "misdirected_request"),
                Case(
                    name: "other address", bytes: get + "Host: 10.1.2.3:\(h.proxyPort)\r\n" + Self.readers + Self.close,
                    status: 421, code: "misdirected_request"),
                Case(
                    name: "two Host headers",
                    bytes: get + "Host: 127.0.0.1\r\nHost: attacker.example\r\n" + Self.readers + Self.close,
                    status: 400, code: "bad_request"),
                Case(name: "no Host", bytes: get + Self.readers + Self.close, status: 400, code: "bad_request"),
            ]
            let outputs = try await HostileInputTests.run(cases, on: h)
            #expect(h.upstream.requestCount == 0, "a misdirected request was forwarded")
            #expect(h.idp.tokenRequestCount == 0)
            // The names the proxy is called by keep working.
            let accepted = try await HostileInputTests.run(
                [
                    Case(
                        name: "loopback", bytes: get + "Host: 127.0.0.1:\(h.proxyPort)\r\n" + Self.readers + Self.close,
                        status: 200),
                    Case(
                        name: "localhost",
                        bytes: get + "Host: localhost:\(h.proxyPort)\r\n" + Self.readers + Self.close, status: 200),
                    Case(
                        name: "alias", bytes: "GET /items HTTP/1.1\r\nHost: Acme\r\n" + Self.readers + Self.close,
                        status: 200),
                    Case(
                        name: "HTTP/1.0 without Host",
                        bytes: "GET /callout:Acme/items HTTP/1.0\r\n" + Self.readers + "\r\n", status: 200),
                ], on: h)
            #expect(h.upstream.requestCount == 4)
            #expect(accepted.count == 4)
            try h.expectNoSecretsLeaked(in: outputs)
        }
    }

    @Test func traceIsRefusedAndOptionsWithoutForwardsLeftIsAnsweredHere() async throws {
        try await ProxyHarness.with { h in
            typealias Case = HostileInputTests.Case
            let host = "Host: 127.0.0.1\r\n"
            let outputs = try await HostileInputTests.run(
                [
                    Case(
                        name: "TRACE", bytes: "TRACE /callout:Acme/t HTTP/1.1\r\n" + host + Self.readers + Self.close,
                        status: 405, code: "method_not_allowed"),
                    Case(
                        name: "TRACE absolute",
                        bytes: "TRACE http://Acme/t HTTP/1.1\r\nHost: Acme\r\n" + Self.readers + Self.close,
                        status: 405, code: "method_not_allowed"),
                    Case(
                        name: "OPTIONS Max-Forwards 0",
                        bytes: "OPTIONS /callout:Acme/o HTTP/1.1\r\n" + host + "Max-Forwards: 0\r\n" + Self.readers
                            + Self.close,
                        status: 200, code: "answered_by_proxy"),
                ], on: h)
            for output in outputs {
                let response = RawResponse(Array(output.utf8))
                #expect(response?.header("allow") == RequestScreen.forwardedMethods, "\(output.prefix(200))")
            }
            #expect(h.upstream.requestCount == 0, "TRACE or OPTIONS with Max-Forwards: 0 was forwarded")
            #expect(h.idp.tokenRequestCount == 0)
            // OPTIONS with hops left goes on, one hop less.
            let options = try await h.viaProxy(
                .OPTIONS, "http://Acme/o", headers: [("Max-Forwards", "3"), ("X-Callout-Permission-Sets", "Readers")])
            #expect(options.status == 200)
            #expect(h.upstream.requests.last?.header("max-forwards") == "2")
        }
    }

    @Test func connectIsRefusedWithAProblemBody() async throws {
        try await ProxyHarness.with { h in
            let connection = try await RawConnection.open(port: h.proxyPort)
            defer { connection.close() }
            try await connection.write("CONNECT Acme:443 HTTP/1.1\r\nHost: Acme:443\r\n\r\n")
            let response = await connection.waitForResponse()
            #expect(response?.status == 405)
            #expect(response?.header("content-type") == Problem.contentType)
            #expect(response?.code == "method_not_allowed", "\(connection.text)")
            #expect(response?.header("allow") == RequestScreen.forwardedMethods)
            #expect(await connection.waitForClose(timeout: .seconds(5)))
            #expect(h.upstream.requestCount == 0)
        }
    }

    @Test func matrixParameterDotSegmentsCannotClimbOutOfTheBasePath() async throws {
        try await ProxyHarness.with { h in
            typealias Case = HostileInputTests.Case
            var cases: [Case] = []
            for target in [
                "/callout:Acme/..;/x", "/callout:Acme/%2e%2e;/x", "/callout:Acme/a/..;/..;/x",
                "/callout:Acme/..;jsessionid=1/admin", "http://Acme/..;/x", "/callout:Acme/%2e%2e%3b/x",
            ] {
                cases.append(
                    Case(
                        name: target,
                        bytes: "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n" + Self.readers + Self.close,
                        status: 400, code: "bad_request"))
            }
            _ = try await HostileInputTests.run(cases, on: h)
            #expect(h.upstream.requestCount == 0)
            // Within the base path `..;` resolves like `..`; it is never sent on.
            let inside = try await h.viaProxy(
                .GET, "http://Acme/a/..;/b", headers: [("X-Callout-Permission-Sets", "Readers")])
            #expect(inside.status == 200)
            #expect(inside.json["path"] as? String == "/v2/b")
        }
    }

    @Test func proxyAuthenticationInfoFromUpstreamStaysBehind() async throws {
        try await ProxyHarness.with { h in
            let back = try await h.viaProxy(
                .GET, "http://Acme/h?hop-headers", headers: [("X-Callout-Permission-Sets", "Readers")])
            #expect(back.status == 200)
            #expect(back.headers.first(name: "proxy-authentication-info") == nil)
            #expect(back.headers.first(name: "x-end-to-end") == "kept")
        }
    }

    /// The 733-request attack: each guess at the token's next character answered 200 or 400.
    /// Now every formula that computes with the token is refused the same way, whatever the token.
    @Test func callerFormulasCannotUseTheTokenAsAnOracle() async throws {
        try await ProxyHarness.with(config: HostileInputTests.hostileConfig) { h in
            let readers = ("X-Callout-Permission-Sets", "Readers")
            var answers: [String] = []
            for guess in ["dev", "zzz", ""] {
                let probe = #"{!IF(BEGINS($Credential.Acme_API.AccessToken, "\#(guess)"), "y", BASE64DECODE("DQo="))}"#
                let r = try await h.viaProxy(.GET, "http://BlobHeader/p", headers: [readers, ("X-Probe", probe)])
                #expect(r.status == 400)
                #expect(r.json["code"] as? String == "formula_failed")
                answers.append(r.body)
            }
            #expect(Set(answers).count == 1, "the refusal depends on the guess")
            let length = try await h.viaProxy(
                .GET, "http://BlobHeader/p",
                headers: [readers, ("X-Probe", "{!LEN($Credential.Acme_API.AccessToken)}")])
            #expect(length.status == 400)
            #expect(h.upstream.requestCount == 0)
            // Placing the token as a whole value still works.
            let whole = try await h.viaProxy(
                .GET, "http://BlobHeader/p",
                headers: [readers, ("X-Probe", "Token {!$Credential.Acme_API.AccessToken}")])
            #expect(whole.status == 200)
            #expect(whole.echoed("x-probe")?.hasPrefix("Token ") == true)
            #expect(
                whole.echoed("x-probe") == "Token " + (whole.echoed("authorization")?.dropFirst("Bearer ".count) ?? "?")
            )
        }
    }

    @Test func userDataCannotAddScopes() async throws {
        try await ProxyHarness.with { h in
            let r = try await h.viaProxy(
                .GET, "http://Acme/s",
                headers: [
                    ("X-Callout-Permission-Sets", "Readers"),
                    ("X-Callout-User-Department", "Finance session:role:Admin offline_access"),
                ])
            #expect(r.status == 400)
            #expect(r.json["code"] as? String == "formula_failed")
            #expect(!r.body.contains("offline_access"))
            #expect(h.idp.tokenRequestCount == 0)
            #expect(h.upstream.requestCount == 0)
        }
    }
}

/// An identity provider that echoes a JWT or a token in `error_description`: the caller's
/// problem gets a short, redacted text; the full text is in the debug log only.
@Suite(.serialized) struct IdentityProviderErrorTextTests {
    @Test func errorDescriptionsAreBoundedAndRedacted() async throws {
        try await ProxyHarness.with { h in
            let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhY21lLXJlYWRlciJ9.c2lnbmF0dXJlLWJ5dGVzLWhlcmU"
            let opaque = "at-4f1c2b9e8d7a6b5c4d3e2f1a0b9c8d7e"
            let tail = String(repeating: "long explanation ", count: 40)
            h.idp.setFault(
                .oauthErrorDescribed(
                    status: 400, error: "invalid_client",
                    description: "assertion \(jwt) refused; token \(opaque) revoked; \(tail)"))
            let r = try await h.viaProxy(.GET, "http://Acme/e", headers: [("X-Callout-Permission-Sets", "Readers")])
            #expect(r.status == 502)
            #expect(r.json["code"] as? String == "token_exchange_failed")
            #expect((r.json["detail"] as? String)?.contains("assertion <redacted> refused") == true, "\(r.body)")
            #expect(!r.body.contains(jwt) && !r.body.contains("eyJ") && !r.body.contains(opaque))
            #expect((r.json["detail"] as? String ?? "").count < 400)
            // Only the debug log has the whole text.
            let debugLines = h.logs.lines.filter { $0.contains("identity provider error_description") }
            #expect(debugLines.contains { $0.contains(opaque) && $0.contains("\"debug\"") })
            #expect(!h.logs.lines.filter { !$0.contains("\"debug\"") }.contains { $0.contains(opaque) })
        }
    }
}
