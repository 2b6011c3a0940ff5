import CalloutDevTools
import Foundation
import Testing

/// Every callout carries a request id: the caller's, or one the proxy makes, sent upstream,
/// returned to the caller and written in the access line.
@Suite(.serialized) struct RequestIdTests {
    let headers = [("X-Callout-Permission-Sets", "Readers"), ("X-Callout-User-Department", "Finance")]

    @Test func aRequestIdIsMadeSentUpstreamReturnedAndLogged() async throws {
        try await ProxyHarness.with { h in
            let r = try await h.direct(.GET, "/callout:Acme/id", headers: headers)
            #expect(r.status == 200)
            let id = try #require(r.headers.first(name: "X-Request-Id"))
            #expect(r.echoed("X-Request-Id") == id)
            #expect(h.logs.text.contains("\"request_id\":\"\(id)\""))
            let second = try await h.direct(.GET, "/callout:Acme/id", headers: headers)
            #expect(second.headers.first(name: "X-Request-Id") != id, "one per callout")
        }
    }

    @Test func theCallersOwnIdIsKeptAndABadOneReplaced() async throws {
        try await ProxyHarness.with { h in
            let own = try await h.direct(.GET, "/callout:Acme/id", headers: headers + [("X-Request-Id", "abc-123")])
            #expect(own.headers.first(name: "X-Request-Id") == "abc-123")
            #expect(own.echoed("X-Request-Id") == "abc-123")
            let bad = try await h.direct(
                .GET, "/callout:Acme/id", headers: headers + [("X-Request-Id", "has space")])
            #expect(bad.headers.first(name: "X-Request-Id") != "has space")
            // A refused callout carries its id too.
            let refused = try await h.direct(.GET, "/callout:Nowhere/x", headers: headers)
            #expect(refused.status == 404)
            #expect(refused.headers.first(name: "X-Request-Id") != nil)
        }
    }

    @Test func anHTTP10KeepAliveCallerIsToldTheConnectionStays() async throws {
        try await ProxyHarness.with { h in
            let result = try await ProxyHarness.run(
                "curl",
                [
                    "-sS", "-0", "--max-time", "20", "-D", "-", "-o", "/dev/null", "-H", "Connection: keep-alive",
                    "-H", "X-Callout-Permission-Sets: Readers", "-H", "X-Callout-User-Department: Finance",
                    h.proxyURL + "/callout:Acme/ten",
                ])
            #expect(result.status == 0)
            let lines = result.output.lowercased()
            #expect(lines.contains("http/1.0 200"), "\(result.output)")
            #expect(lines.contains("connection: keep-alive"), "\(result.output)")
        }
    }

    @Test func anUnreachableUpstreamsReasonIsLogged() async throws {
        try await ProxyHarness.with { h in
            h.upstream.setBehavior(.closeImmediately)
            let r = try await h.direct(.GET, "/callout:Acme/gone", headers: headers)
            #expect(r.status == 502)
            #expect(h.logs.text.contains("\"upstream_failure\":\"the endpoint reset the connection\""))
        }
    }
}
