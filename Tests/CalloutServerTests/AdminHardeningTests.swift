import CalloutCore
import CalloutServer
import Foundation
import Testing

/// The admin listener against web pages and idle or partial connections: cross-site requests,
/// rebound Host names, form posts, slow heads, too many connections, and caller data in
/// `/credentials`. Loopback only.
@Suite(.serialized) struct AdminHardeningTests {
    @Test func webPagesCannotDriveTheAdminEndpoints() async throws {
        try await OpsHarness.with { h in
            let form = ("Content-Type", "application/x-www-form-urlencoded")
            // Plain cross-site request forgery: a form on another site posting to /reload.
            let forged = try await h.send(
                .POST, h.adminURL + "/reload", body: "a=1", headers: [("Origin", "http://evil.example"), form])
            #expect(forged.status == 403)
            #expect(forged.json["code"] as? String == "cross_site_request")
            #expect(forged.headers.first(name: "content-type") == Problem.contentType)
            let fetched = try await h.send(
                .GET, h.adminURL + "/credentials", body: nil, headers: [("Sec-Fetch-Site", "cross-site")])
            #expect(fetched.status == 403)
            #expect(fetched.json["code"] as? String == "cross_site_request")
            #expect(
                try await h.send(.GET, h.adminURL + "/metrics", body: nil, headers: [("Origin", "null")]).status == 403)
            // Even without Origin, a request a form could send (no custom header, a simple
            // content type) does not change anything.
            for headers in [[form], [("Content-Type", "text/plain")], []] {
                let simple = try await h.send(.POST, h.adminURL + "/reload", body: "x", headers: headers)
                #expect(simple.status == 403)
                #expect(simple.json["code"] as? String == "admin_header_required")
            }
            let simpleDelete = try await h.send(.DELETE, h.adminURL + "/tokens", body: nil, headers: [])
            #expect(simpleDelete.json["code"] as? String == "admin_header_required")
            // DNS rebinding: the page's own name in Host.
            let port = URL(string: h.adminURL)?.port ?? 0
            let rebound = try await h.send(
                .GET, h.adminURL + "/credentials", body: nil, headers: [("Host", "attacker.example:\(port)")])
            #expect(rebound.status == 421)
            #expect(rebound.json["code"] as? String == "misdirected_request")
            #expect(!h.logs.text.contains("configuration reloaded"), "a refused request reloaded the configuration")

            // Scripts and the listener's own origin still work.
            #expect(try await h.admin(.POST, "/reload").status == 200)
            let json = try await h.send(
                .POST, h.adminURL + "/explain", body: #"{"method":"GET","url":"http://Acme/x"}"#,
                headers: [("Content-Type", "application/json"), ("Origin", "http://127.0.0.1:\(port)")])
            #expect(json.status == 200)
            #expect(
                try await h.send(.GET, h.adminURL + "/healthz", body: nil, headers: [("Sec-Fetch-Site", "none")]).status
                    == 200)
            #expect(
                try await h.send(.GET, h.adminURL + "/healthz", body: nil, headers: [("Host", "localhost:\(port)")])
                    .status == 200)
        }
    }

    @Test func credentialsShowCountsNotCallerData() async throws {
        try await OpsHarness.with { h in
            let caller = [("X-Callout-Permission-Sets", "Readers"), ("X-Callout-User-Department", "Finance")]
            #expect(try await h.callout("/callout:Acme/items", headers: caller).status == 200)
            let response = try await h.admin(.GET, "/credentials")
            #expect(response.status == 200)
            #expect(!response.body.contains("Finance"), "a $User value reached /credentials")
            let tokens = response.json["tokens"] as? [[String: Any]] ?? []
            #expect(tokens.first?["scope_count"] as? Int == 1)
            #expect(tokens.first?["scope"] == nil)
            let external = (response.json["external_credentials"] as? [[String: Any]])?.first ?? [:]
            #expect(external["cached_tokens"] as? Int == 1)
        }
    }

    @Test func partialHeadsAndIdleConnectionsAreClosedAndConnectionsCapped() async throws {
        // The idle limit leaves room for a busy machine between the two admitted connections'
        // answers and the third's arrival.
        let settings = "header_read_timeout_seconds = 1\nidle_timeout_seconds = 5\nadmin_max_connections = 2"
        try await OpsHarness.with(config: { OpsHarness.config($0, proxySettings: settings) }) { h in
            let port = URL(string: h.adminURL)?.port ?? 0
            // A partial head is cut off at the header-read limit.
            let partial = try await RawConnection.open(port: port)
            defer { partial.close() }
            try await partial.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            #expect(await partial.waitForClose(timeout: .seconds(10)), "a partial admin head stayed open")

            // An idle keep-alive connection is closed after its answer.
            let idle = try await RawConnection.open(port: port)
            defer { idle.close() }
            try await idle.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            #expect(await idle.waitForResponse()?.status == 200)
            #expect(await idle.waitForClose(timeout: .seconds(20)), "an idle admin connection stayed open")

            // Two open connections: the third is closed at once, unanswered.
            let first = try await RawConnection.open(port: port)
            let second = try await RawConnection.open(port: port)
            // Both answered, so both were admitted before the third arrives.
            for connection in [first, second] {
                try await connection.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                #expect(await connection.waitForResponse()?.status == 200)
            }
            defer {
                first.close()
                second.close()
            }
            let third = try await RawConnection.open(port: port)
            defer { third.close() }
            try? await third.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            #expect(await third.waitForClose(timeout: .seconds(10)))
            // Unanswered, unless the idle limit had already freed a slot.
            #expect(!third.text.contains("200") || first.isClosed || second.isClosed, "\(third.text)")
            first.close()
            second.close()
            // Slots free again once those close.
            var answered = false
            for _ in 0..<50 where !answered {
                let again = try await RawConnection.open(port: port)
                try? await again.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                answered = await again.waitForResponse(timeout: .seconds(2))?.status == 200
                again.close()
            }
            #expect(answered)
        }
    }
}
