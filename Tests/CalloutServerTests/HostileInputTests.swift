import CalloutCore
import CalloutDevTools
import Foundation
import NIOCore
import Testing

/// Exact bytes over raw TCP: smuggling shapes, oversize and invalid heads, targets that are not
/// named credentials, traversal, identity spoofing and header injection. None reaches the upstream.
@Suite(.serialized) struct HostileInputTests {
    static let prefix = "Host: 127.0.0.1\r\nX-Callout-Permission-Sets: Readers\r\n"

    static func blob(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    /// Standard config plus formulas that decode user input into a scope and a header.
    static func hostileConfig(_ env: LocalEnvironment) -> String {
        ProxyHarness.standardConfig(
            env,
            extra: """
                [[external_credential]]
                name = "Blob_API"
                identity_provider_url = "\(env.identityProvider.tokenEndpointURL)"
                signing_certificate = "Local_Signing"
                scope = '{!BASE64DECODE($User.Blob)}'

                  [[external_credential.principal]]
                  name = "Reader"
                  sequence_number = 1
                  client_id = "acme-reader"
                  permission_sets = ["Readers"]

                [[named_credential]]
                name = "BlobScope"
                url = "\(env.upstream.baseURL)/v2"
                external_credential = "Blob_API"

                [[named_credential]]
                name = "BlobHeader"
                url = "\(env.upstream.baseURL)/v2"
                external_credential = "Acme_API"
                allow_formulas_in_headers = true

                  [[named_credential.custom_header]]
                  name = "X-Decoded"
                  value = '{!BASE64DECODE($User.Blob)}'
                """)
    }

    struct Case {
        let name: String
        let bytes: String
        let status: Int
        var code: String? = nil
        /// The proxy must end the connection (smuggling: the rest of the stream is not trusted).
        var closes = false
    }

    /// Sends each case on a fresh connection and checks the answer.
    static func run(_ cases: [Case], on h: ProxyHarness) async throws -> [String] {
        var outputs: [String] = []
        for c in cases {
            let connection = try await RawConnection.open(port: h.proxyPort)
            defer { connection.close() }
            try? await connection.write(c.bytes)
            let response = await connection.waitForResponse()
            #expect(response?.status == c.status, "\(c.name): \(connection.text.prefix(300))")
            if let code = c.code { #expect(response?.code == code, "\(c.name): \(response?.body ?? "")") }
            if let response, response.status >= 400 {
                #expect(response.header("content-type") == "application/problem+json", "\(c.name)")
            }
            if c.closes {
                #expect(await connection.waitForClose(timeout: .seconds(5)), "\(c.name): connection left open")
            }
            outputs.append(connection.text)
        }
        return outputs
    }

    @Test func smugglingShapesAreRefusedAndTheConnectionClosed() async throws {
        try await ProxyHarness.with(config: Self.hostileConfig) { h in
            let post = "POST /callout:Acme/a HTTP/1.1\r\n" + Self.prefix
            let cases: [Case] = [
                Case(
                    name: "CL+TE", bytes: post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                    status: 400, closes: true),
                Case(
                    name: "TE+CL", bytes: post + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
                    status: 400, closes: true),
                Case(
                    name: "TE obs-fold", bytes: post + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", status: 400,
                    closes: true),
                Case(
                    name: "TE chunked then obs-fold",
                    bytes: post + "Transfer-Encoding: chunked\r\n , identity\r\n\r\n0\r\n\r\n", status: 400,
                    closes: true),
                Case(
                    name: "duplicate CL", bytes: post + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
                    status: 400, closes: true),
                Case(
                    name: "differing CL", bytes: post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
                    status: 400, closes: true),
                Case(name: "CL list", bytes: post + "Content-Length: 5, 5\r\n\r\nhello", status: 400, closes: true),
                Case(name: "negative CL", bytes: post + "Content-Length: -1\r\n\r\n", status: 400, closes: true),
                Case(name: "signed CL", bytes: post + "Content-Length: +5\r\n\r\nhello", status: 400, closes: true),
                Case(
                    name: "bad chunk size", bytes: post + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
                    status: 400, closes: true),
                Case(
                    name: "overflowing chunk size",
                    bytes: post + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
                    status: 400, closes: true),
                Case(
                    name: "chunk without CRLF",
                    bytes: post + "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", status: 400,
                    closes: true),
                Case(name: "TE gzip", bytes: post + "Transfer-Encoding: gzip\r\n\r\n", status: 400, closes: true),
                Case(
                    name: "TE gzip, chunked", bytes: post + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                    status: 400, closes: true),
                Case(
                    name: "TE twice",
                    bytes: post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                    status: 400, closes: true),
                Case(
                    name: "TE xchunked", bytes: post + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", status: 400,
                    closes: true),
                Case(
                    name: "space before colon", bytes: post + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
                    status: 400, closes: true),
                Case(
                    name: "TE on GET",
                    bytes: "GET /callout:Acme/a HTTP/1.1\r\n" + Self.prefix
                        + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", status: 400,
                    closes: true),
            ]
            let outputs = try await Self.run(cases, on: h)
            #expect(h.upstream.requestCount == 0, "a smuggling shape was forwarded")
            #expect(await poll(timeout: .seconds(5)) { h.service.proxy.openConnections == 0 })
            try h.expectNoSecretsLeaked(in: outputs)
        }
    }

    @Test func oversizeAndInvalidHeadsAndHostileTargets() async throws {
        try await ProxyHarness.with(config: Self.hostileConfig) { h in
            let get = "GET /callout:Acme/a HTTP/1.1\r\n" + Self.prefix
            let big = String(repeating: "a", count: 40 * 1024)
            let close = "Connection: close\r\n\r\n"
            var cases: [Case] = [
                Case(
                    name: "oversize header value", bytes: get + "X-Big: \(big)\r\n" + close, status: 431,
                    code: "request_header_fields_too_large", closes: true),
                Case(
                    name: "oversize header list",
                    bytes: get + (0..<400).map { "X-H\($0): \(String(repeating: "b", count: 100))\r\n" }.joined()
                        + close, status: 431, code: "request_header_fields_too_large", closes: true),
                Case(
                    name: "oversize request line", bytes: "GET /callout:Acme/\(big) HTTP/1.1\r\n" + Self.prefix + close,
                    status: 431, code: "request_header_fields_too_large", closes: true),
                Case(name: "NUL in value", bytes: get + "X-A: a\0b\r\n" + close, status: 400, closes: true),
                Case(name: "DEL in value", bytes: get + "X-A: a\u{7F}b\r\n" + close, status: 400, closes: true),
                Case(name: "control in name", bytes: get + "X-\u{1}A: b\r\n" + close, status: 400, closes: true),
                Case(name: "space in name", bytes: get + "X A: b\r\n" + close, status: 400, closes: true),
                Case(name: "bare CR in value", bytes: get + "X-A: a\rb\r\n" + close, status: 400, closes: true),
                Case(name: "no colon", bytes: get + "X-A b\r\n" + close, status: 400, closes: true),
                Case(name: "bad version", bytes: "GET /callout:Acme/a HTTP/9.9\r\n" + Self.prefix + close, status: 400),
                Case(name: "bad method", bytes: "G(T /callout:Acme/a HTTP/1.1\r\n" + Self.prefix + close, status: 400),
            ]
            // Absolute-form to anything but an alias: 404, nothing leaves the machine.
            for target in [
                "http://127.0.0.1:9/a", "http://127.0.0.1:\(h.proxyPort)/callout:Acme/a", "http://[::1]:9/a",
                "http://localhost/a", "http://localhost:\(h.proxyPort)/a", "http://Acme@127.0.0.1/a",
                "http://127.1/a", "http://0x7f000001/a", "http://2130706433/a", "http://acme.evil.example/a",
                "http://:80/a",
            ] {
                cases.append(
                    Case(
                        name: target, bytes: "GET \(target) HTTP/1.1\r\n" + Self.prefix + close, status: 404,
                        code: "unknown_named_credential"))
            }
            cases.append(
                Case(
                    name: "https absolute-form", bytes: "GET https://Acme/a HTTP/1.1\r\n" + Self.prefix + close,
                    status: 400))
            // Traversal, encoded once or twice.
            for target in [
                "/callout:Acme/../x", "/callout:Acme/%2e%2e/x", "/callout:Acme/.%2E/x",
                "/callout:Acme/a/%252e%252e/%252e%252e/x",
                "/callout:Acme/%25252e%25252e/x", "/callout:Acme/a%2f..%2f..%2fx", "/callout:Acme/a%5c..%5cx",
                "/callout:Acme/%00", "http://Acme/a/%2e%2e/%2e%2e/x", "/callout%3AAcme/%2e%2e/%2e%2e/x",
            ] {
                cases.append(
                    Case(name: target, bytes: "GET \(target) HTTP/1.1\r\n" + Self.prefix + close, status: 400))
            }
            // `callout:` with unknown or empty names.
            for target in ["/callout:Nobody/a", "/callout:/a", "/callout%3A/a", "/callout:", "/callout:%41cme/a"] {
                cases.append(
                    Case(
                        name: target, bytes: "GET \(target) HTTP/1.1\r\n" + Self.prefix + close, status: 404,
                        code: "unknown_named_credential"))
            }
            let outputs = try await Self.run(cases, on: h)
            #expect(h.upstream.requestCount == 0, "a hostile request was forwarded")
            #expect(h.idp.tokenRequestCount == 0)
            #expect(
                try await h.viaProxy(.GET, "http://Acme/ok", headers: [("X-Callout-Permission-Sets", "Readers")]).status
                    == 200)
            try h.expectNoSecretsLeaked(in: outputs)
        }
    }

    @Test func headerInjectionThroughUserFieldsAndFormulasIsRefused() async throws {
        try await ProxyHarness.with(config: Self.hostileConfig) { h in
            let get = { (alias: String) in "GET /callout:\(alias)/a HTTP/1.1\r\n" + Self.prefix }
            let close = "Connection: close\r\n\r\n"
            let crlf = Self.blob("x\r\nX-Injected: 1")
            let lf = Self.blob("x\nX-Injected: 1")
            let nul = Self.blob("x\0y")
            let sets = (0..<300).map { "Set\($0)" }
            let cases: [Case] = [
                // Raw CR/LF never gets past the parser.
                Case(
                    name: "raw CR LF in user field",
                    bytes: get("Acme") + "X-Callout-User-Department: a\rX-Injected: 1\r\n" + close, status: 400,
                    closes: true),
                Case(
                    name: "obs-fold in user field",
                    bytes: get("Acme") + "X-Callout-User-Department: a\r\n X-Injected: 1\r\n" + close, status: 400,
                    closes: true),
                Case(
                    name: "control character in user field",
                    bytes: get("Acme") + "X-Callout-User-Department: a\u{1B}b\r\n" + close, status: 400),
                // Values that become CR/LF only after a formula.
                Case(
                    name: "CRLF via BASE64DECODE into a header",
                    bytes: get("BlobHeader") + "X-Callout-User-Blob: \(crlf)\r\n" + close, status: 400,
                    code: "formula_failed"),
                Case(
                    name: "LF via BASE64DECODE into a header",
                    bytes: get("BlobHeader") + "X-Callout-User-Blob: \(lf)\r\n" + close, status: 400,
                    code: "formula_failed"),
                Case(
                    name: "NUL via BASE64DECODE into a header",
                    bytes: get("BlobHeader") + "X-Callout-User-Blob: \(nul)\r\n" + close, status: 400,
                    code: "formula_failed"),
                Case(
                    name: "CRLF via BASE64DECODE into the scope",
                    bytes: get("BlobScope") + "X-Callout-User-Blob: \(crlf)\r\n" + close, status: 400,
                    code: "formula_failed"),
                Case(
                    name: "CRLF via a request header formula",
                    bytes: get("BlobHeader") + "X-Callout-User-Blob: eA==\r\nX-Mine: {!BASE64DECODE(\"\(crlf)\")}\r\n"
                        + close, status: 400, code: "formula_failed"),
                // Huge permission-set lists.
                Case(
                    name: "300 permission sets in one header",
                    bytes: get("Acme") + "X-Callout-Permission-Sets: \(sets.joined(separator: ","))\r\n" + close,
                    status: 400),
                Case(
                    name: "300 permission-set headers",
                    bytes: get("Acme") + sets.map { "X-Callout-Permission-Sets: \($0)\r\n" }.joined() + close,
                    status: 400),
                Case(
                    name: "one huge permission set",
                    bytes: get("Acme") + "X-Callout-Permission-Sets: \(String(repeating: "p", count: 2000))\r\n"
                        + close, status: 400),
            ]
            let outputs = try await Self.run(cases, on: h)
            #expect(h.upstream.requestCount == 0, "an injection attempt was forwarded")
            #expect(!h.idp.requests.contains { $0.scope?.contains("\n") == true || $0.scope?.contains("\r") == true })
            // Ordinary values through the same formulas work.
            let fine = try await h.viaProxy(
                .GET, "http://BlobHeader/a",
                headers: [("X-Callout-Permission-Sets", "Readers"), ("X-Callout-User-Blob", Self.blob("plain"))])
            #expect(fine.status == 200, "\(fine.body)")
            #expect(fine.echoed("x-decoded") == "plain")
            #expect(fine.echoed("x-injected") == nil)
            try h.expectNoSecretsLeaked(in: outputs)
        }
    }

    @Test func identityHeadersFromUntrustedAddressesGet407() async throws {
        try await ProxyHarness.with(config: {
            ProxyHarness.standardConfig($0, proxySettings: "trusted_callers = [\"10.99.0.0/16\"]")
        }) { h in
            let close = "Connection: close\r\n\r\n"
            let cases: [Case] = [
                Case(
                    name: "permission sets", bytes: "GET /callout:Acme/a HTTP/1.1\r\n" + Self.prefix + close,
                    status: 407, code: "proxy_authentication_required"),
                Case(
                    name: "principal and user fields",
                    bytes: "GET http://Acme/a HTTP/1.1\r\nHost: Acme\r\nX-Callout-Principal: Admin\r\n"
                        + "X-Callout-User-Department: Finance\r\nX-Forwarded-For: 10.99.0.1\r\n" + close, status: 407,
                    code: "proxy_authentication_required"),
                Case(
                    name: "malformed proxy authorization",
                    bytes: "GET /callout:Acme/a HTTP/1.1\r\n" + Self.prefix + "Proxy-Authorization: Basic %%%\r\n"
                        + close, status: 407, code: "proxy_authentication_required"),
            ]
            let outputs = try await Self.run(cases, on: h)
            #expect(h.upstream.requestCount == 0)
            #expect(h.idp.tokenRequestCount == 0)
            try h.expectNoSecretsLeaked(in: outputs)
        }
    }
}
