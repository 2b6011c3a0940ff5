import AsyncHTTPClient
import CalloutCore
import CalloutDevTools
import Crypto
import Foundation
import NIOCore
import Testing

@Suite(.serialized) struct DataPlaneTests {
    let readers = ("X-Callout-Permission-Sets", "Readers")

    @Test func allThreeAddressingFormsReachTheEndpointWithAToken() async throws {
        try await ProxyHarness.with { h in
            let viaProxy = try await h.viaProxy(.GET, "http://Acme/items?x=1", headers: [readers])
            let pathForm = try await h.direct(.GET, "/callout:Acme/items?x=1", headers: [readers])
            let encoded = try await h.direct(.GET, "/callout%3AAcme/items?x=1", headers: [readers])
            let hostForm = try await h.direct(.GET, "/items?x=1", headers: [readers, ("Host", "acme")])
            for r in [viaProxy, pathForm, encoded, hostForm] {
                #expect(r.status == 200, "\(r.body)")
                #expect(r.json["path"] as? String == "/v2/items")
                #expect(r.json["query"] as? String == "x=1")
                #expect(r.json["token_valid"] as? Bool == true)
                #expect((r.json["authorization"] as? String)?.hasPrefix("Bearer ") == true)
                #expect(r.headers.first(name: "via")?.contains("callout-proxy") == true)
            }
            // One token for all four: the cache serves the rest.
            #expect(h.idp.tokenRequestCount == 1)
        }
    }

    @Test func lowestSequenceNumberWinsWhateverTheFileOrder() async throws {
        try await ProxyHarness.with { h in
            _ = try await h.viaProxy(.GET, "http://Acme/a", headers: [("X-Callout-Permission-Sets", "Readers, Admins")])
            #expect(h.idp.requests.last?.clientId == "acme-admin")
            _ = try await h.viaProxy(.GET, "http://Acme/a", headers: [("X-Callout-Profile", "Ops")])
            #expect(h.idp.requests.last?.clientId == "acme-reader")
            let asked = try await h.viaProxy(
                .GET, "http://Acme/a",
                headers: [("X-Callout-Permission-Sets", "Admins"), ("X-Callout-Principal", "Reader")])
            #expect(asked.status == 200)
            let refused = try await h.viaProxy(
                .GET, "http://Acme/a", headers: [readers, ("X-Callout-Principal", "Admin")])
            #expect(refused.status == 403)
            #expect(refused.json["code"] as? String == "principal_not_allowed")
        }
    }

    @Test func refusalsNeverReachTheUpstreamOrTheIdentityProvider() async throws {
        let extra = """
            [[caller]]
            name = "billing"
            token_sha256 = "\(Hex.encode(SHA256.hash(data: Data("billing-secret".utf8))))"
            permission_sets = ["Readers"]
            """
        try await ProxyHarness.with(config: {
            ProxyHarness.standardConfig($0, proxySettings: "trusted_callers = [\"10.99.0.0/16\"]", extra: extra)
        }) { h in
            // Loopback is not trusted in this configuration: 407 without credentials.
            let noAuth = try await h.viaProxy(.GET, "http://Acme/a", headers: [readers])
            #expect(noAuth.status == 407)
            #expect(noAuth.headers[canonicalForm: "proxy-authenticate"].count >= 1)
            #expect(noAuth.headers.first(name: "content-type") == "application/problem+json")
            #expect(noAuth.json["code"] as? String == "proxy_authentication_required")
            let wrong = try await h.viaProxy(.GET, "http://Acme/a", headers: [("Proxy-Authorization", "Bearer nope")])
            #expect(wrong.status == 407)
            let auth = ("Proxy-Authorization", "Bearer billing-secret")
            #expect(try await h.viaProxy(.GET, "http://Nowhere/a", headers: [auth]).status == 404)
            #expect(try await h.direct(.GET, "/callout:/a", headers: [auth]).status == 404)
            #expect(try await h.direct(.GET, "/a", headers: [auth]).status == 404)
            #expect(try await h.viaProxy(.GET, "http://127.0.0.1:9/a", headers: [auth]).status == 404)
            let disabled = try await h.viaProxy(.GET, "http://Dormant/a", headers: [auth])
            #expect(disabled.status == 403)
            #expect(disabled.json["code"] as? String == "named_credential_disabled")
            #expect(h.upstream.requestCount == 0)
            #expect(h.idp.tokenRequestCount == 0)
            // Identity headers from an authenticated but untrusted caller are ignored: it acts
            // with its configured permission sets (Readers), so Reader, not Admin.
            let ok = try await h.viaProxy(
                .GET, "http://Acme/a",
                headers: [auth, ("X-Callout-Permission-Sets", "Admins"), ("X-Callout-Principal", "Admin")])
            #expect(ok.status == 200)
            #expect(h.idp.requests.last?.clientId == "acme-reader")
            #expect(ok.echoed("proxy-authorization") == nil)
            #expect(ok.echoed("x-callout-principal") == nil)
        }
    }

    @Test func noPrincipalAndConnectAndTraversal() async throws {
        try await ProxyHarness.with { h in
            let none = try await h.viaProxy(
                .GET, "http://Acme/a", headers: [("X-Callout-Permission-Sets", "Strangers")])
            #expect(none.status == 403)
            #expect(none.json["code"] as? String == "no_principal")
            for path in [
                "/callout:Acme/../x", "/callout:Acme/%2e%2e/x", "/callout:Acme/a/%252e%252e/%252e%252e/x",
                "/callout:Acme/a%2fb",
            ] {
                let r = try await h.direct(.GET, path, headers: [readers])
                #expect(r.status == 400, "\(path)")
            }
            let connect = try await ProxyHarness.run(
                "curl",
                [
                    "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "-X", "CONNECT",
                    "--request-target", "api.acme.example:443", h.proxyURL,
                ])
            #expect(connect.output == "405")
            #expect(h.upstream.requestCount == 0)
            #expect(h.idp.tokenRequestCount == 0)
        }
    }

    @Test func revokedTokenRefreshesOnceAndReplaysThePostBody() async throws {
        try await ProxyHarness.with { h in
            _ = try await h.viaProxy(.GET, "http://Acme/warm", headers: [readers])
            let first = try #require(h.upstream.requests.last?.authorization)
            h.idp.revoke(token: String(first.dropFirst("Bearer ".count)))
            let payload = String(repeating: "payload-", count: 5000)
            let r = try await h.viaProxy(
                .POST, "http://Acme/orders", headers: [readers, ("Content-Type", "text/plain")],
                body: ByteBuffer(string: payload))
            #expect(r.status == 200, "\(r.body)")
            let expected = Hex.encode(SHA256.hash(data: Data(payload.utf8)))
            #expect(r.json["body_sha256"] as? String == expected)
            let posts = h.upstream.requests.filter { $0.method == "POST" }
            #expect(posts.count == 2)
            #expect(posts.allSatisfy { $0.bodySHA256 == expected })
            #expect(posts[0].status == 401)
            #expect(posts[0].authorization != posts[1].authorization)
            #expect(h.idp.tokenRequestCount == 2)
        }
    }

    @Test func permanent401IsRetriedExactlyOnce() async throws {
        try await ProxyHarness.with { h in
            h.upstream.setBehavior(.unauthorizedForever)
            let r = try await h.viaProxy(.GET, "http://Acme/a", headers: [readers])
            #expect(r.status == 401)
            #expect(h.upstream.requestCount == 2)
            #expect(h.idp.tokenRequestCount == 2)
        }
    }

    @Test func additionalStatusRefreshesAndOthersDoNot() async throws {
        try await ProxyHarness.with { h in
            h.upstream.setBehavior(.statusSequence([403]))
            let listed = try await h.viaProxy(.GET, "http://Acme/a", headers: [readers])
            #expect(listed.status == 200)
            #expect(h.upstream.requestCount == 2)
            h.upstream.setBehavior(.statusSequence([404]))
            let unlisted = try await h.viaProxy(.GET, "http://Acme/a", headers: [readers])
            #expect(unlisted.status == 404)
            #expect(h.upstream.requestCount == 3)
            h.upstream.setBehavior(.statusSequence([500]))
            #expect(try await h.viaProxy(.GET, "http://Acme/a", headers: [readers]).status == 500)
            #expect(h.upstream.requestCount == 4)
            #expect(h.idp.tokenRequestCount == 2)
        }
    }

    @Test func headersAreStrippedAndOverridden() async throws {
        try await ProxyHarness.with { h in
            let r = try await h.viaProxy(
                .GET, "http://Acme/h",
                headers: [
                    readers, ("X-Callout-User-Department", "Finance"), ("Authorization", "Bearer caller-supplied"),
                    ("Connection", "X-Hop"), ("X-Hop", "1"), ("X-Tenant", "caller"), ("Accept", "application/json"),
                ])
            #expect(r.status == 200)
            #expect(r.echoed("authorization") != "Bearer caller-supplied")
            #expect(r.echoed("x-callout-permission-sets") == nil)
            #expect(r.echoed("x-callout-user-department") == nil)
            #expect(r.echoed("x-hop") == nil)
            #expect(r.echoed("x-tenant") == "acme")
            #expect(r.echoed("x-overridden") == "from-named")
            #expect(r.echoed("accept") == "application/json")
            #expect(r.echoed("host")?.hasPrefix("127.0.0.1:") == true)
            #expect(r.echoed("via")?.contains("callout-proxy") == true)
            #expect(r.echoed("x-forwarded-for") == nil)
            // The per-user scope formula reached the identity provider.
            #expect(h.idp.requests.last?.scope == "session:role:Finance")
            // Response side: hop-by-hop headers and those the upstream's Connection header names stay
            // behind; end-to-end ones come through.
            let back = try await h.viaProxy(.GET, "http://Acme/h?hop-headers", headers: [readers])
            #expect(back.status == 200)
            #expect(back.headers.first(name: "x-response-hop") == nil)
            #expect(back.headers.first(name: "keep-alive") == nil)
            #expect(back.headers[canonicalForm: "connection"].allSatisfy { $0.lowercased() == "close" })
            #expect(back.headers.first(name: "x-end-to-end") == "kept")
            #expect(back.headers.first(name: "via")?.contains("callout-proxy") == true)
        }
    }

    @Test func redirectsArePassedBackNeverFollowed() async throws {
        try await ProxyHarness.with { h in
            h.upstream.setBehavior(.redirect(to: "https://elsewhere.example/steal"))
            let r = try await h.viaProxy(.GET, "http://Acme/r", headers: [readers])
            #expect(r.status == 302)
            #expect(r.headers.first(name: "location") == "https://elsewhere.example/steal")
            #expect(h.upstream.requestCount == 1)
        }
    }

    @Test func realClientsCurlAndPythonHonouringHTTPProxy() async throws {
        try await ProxyHarness.with { h in
            let curl = try await ProxyHarness.run(
                "curl",
                [
                    "-s", "--max-time", "20", "-x", h.proxyURL, "-H", "X-Callout-Permission-Sets: Readers",
                    "http://Acme/from-curl?q=1",
                ])
            #expect(curl.status == 0)
            #expect(curl.output.contains("\"path\":\"/v2/from-curl\""))
            #expect(curl.output.contains("\"token_valid\":true"))
            let script = """
                import urllib.request
                req = urllib.request.Request("http://Acme/from-python", headers={"X-Callout-Permission-Sets": "Readers"})
                print(urllib.request.urlopen(req, timeout=20).read().decode())
                """
            let python = try await ProxyHarness.run(
                "python3", ["-c", script],
                environment: ["HTTP_PROXY": h.proxyURL, "http_proxy": h.proxyURL, "NO_PROXY": "", "no_proxy": ""])
            #expect(python.status == 0)
            #expect(python.output.contains("\"path\":\"/v2/from-python\""))
            #expect(python.output.contains("\"token_valid\":true"))
        }
    }

    @Test func largeBodiesStreamBothWaysWithBoundedMemory() async throws {
        try await ProxyHarness.with { h in
            let total = 100 << 20
            let chunk = ByteBuffer(repeating: 0x61, count: 64 * 1024)
            let chunks = total / chunk.readableBytes
            let before = residentBytes()
            let stream = AsyncStream<ByteBuffer> { continuation in
                for _ in 0..<chunks { continuation.yield(chunk) }
                continuation.finish()
            }
            let r = try await h.direct(
                .PUT, "/callout:Acme/upload", headers: [readers], body: .stream(stream, length: .known(Int64(total))))
            #expect(r.status == 200)
            #expect(r.json["body_bytes"] as? Int == total)
            var download = HTTPClientRequest(url: h.proxyURL + "/callout:Acme/download?respond_bytes=\(total)")
            download.headers.add(name: "X-Callout-Permission-Sets", value: "Readers")
            let response = try await h.direct.execute(download, timeout: .seconds(60))
            var received = 0
            for try await part in response.body { received += part.readableBytes }
            #expect(received == total)
            let growth = residentBytes() - before
            #expect(growth < 96 << 20, "resident memory grew by \(growth >> 20) MiB while streaming 2 × 100 MiB")
        }
    }
}

/// Resident set size of this process, from /proc (0 where unavailable).
func residentBytes() -> Int {
    guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = statm.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

@Suite(.serialized) struct ExpectContinueTests {
    @Test func curlUploadWithExpectContinueIsAnsweredByTheProxy() async throws {
        try await ProxyHarness.with { h in
            let file = h.env.directory.appendingPathComponent("upload.bin")
            try Data(repeating: 0x62, count: 3 << 20).write(to: file)
            let curl = try await ProxyHarness.run(
                "curl",
                [
                    "-s", "--max-time", "30", "-x", h.proxyURL, "-H", "X-Callout-Permission-Sets: Readers", "-H",
                    "Expect: 100-continue",
                    "--data-binary", "@\(file.path)", "http://Acme/upload",
                ])
            #expect(curl.status == 0)
            #expect(curl.output.contains("\"body_bytes\":\(3 << 20)"))
            #expect(!curl.output.lowercased().contains("\"expect\""))
            let refused = try await ProxyHarness.run(
                "curl",
                [
                    "-s", "--max-time", "30", "-x", h.proxyURL, "-H", "Expect: 100-continue", "--data-binary",
                    "@\(file.path)", "http://Acme/upload",
                ])
            #expect(refused.output.contains("no_principal"))
        }
    }
}

@Suite(.serialized) struct CallerFormulaTests {
    @Test func formulasInCallerHeadersAndBodyWhenAllowed() async throws {
        try await ProxyHarness.with(config: {
            ProxyHarness.standardConfig(
                $0,
                namedSettings:
                    "allow_formulas_in_headers = true\nallow_formulas_in_body = true\ngenerate_authorization_header = false"
            )
        }) { h in
            let r = try await h.viaProxy(
                .POST, "http://Acme/f",
                headers: [
                    ("X-Callout-Permission-Sets", "Readers"), ("X-Api-Key", "{!$Credential.Acme_API.AccessToken}"),
                    ("X-Client", "{!$Credential.Acme_API.ClientId}"), ("Content-Type", "application/json"),
                ],
                body: ByteBuffer(string: #"{"client":"{!$Credential.Acme_API.ClientId}"}"#))
            #expect(r.status == 200, "\(r.body)")
            #expect(r.echoed("authorization") == nil)
            #expect(r.echoed("x-client") == "acme-reader")
            let key = try #require(r.echoed("x-api-key"))
            #expect(h.idp.isValid(token: key) != nil)
            let expected = #"{"client":"acme-reader"}"#
            #expect(r.json["body_bytes"] as? Int == expected.utf8.count)
        }
    }

    @Test func formulasInCallerHeadersAreLiteralWhenNotAllowed() async throws {
        try await ProxyHarness.with { h in
            let r = try await h.viaProxy(
                .GET, "http://Acme/f",
                headers: [
                    ("X-Callout-Permission-Sets", "Readers"), ("X-Api-Key", "{!$Credential.Acme_API.AccessToken}"),
                ])
            #expect(r.echoed("x-api-key") == "{!$Credential.Acme_API.AccessToken}")
        }
    }
}
