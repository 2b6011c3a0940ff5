import CalloutDevTools
import Crypto
import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import CalloutServer

/// An upstream that answers unasked, appends junk or closes without warning must never make one
/// caller read another's answer: every answer is checked against its request (path, principal).
@Suite(.serialized) struct UpstreamDesyncTests {
    /// Whom the echoed `Authorization` was issued to, as the identity provider recorded it.
    static func clientId(of echoed: ProxyHarness.Response, idp: DevelopmentIdentityProvider) -> String? {
        guard let authorization = echoed.json["authorization"] as? String, authorization.hasPrefix("Bearer ") else {
            return nil
        }
        return idp.isValid(token: String(authorization.dropFirst("Bearer ".count)))?.clientId
    }

    static func sha256Hex(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    @Test func everyAnswerReachesItsOwnCallerWhatTheUpstreamSends() async throws {
        let settings = "upstream_max_connections_per_host = 2"
        try await OpsHarness.with(config: { OpsHarness.config($0, proxySettings: settings) }) { h in
            h.upstream.setBehavior(
                .misbehaving([.extraResponse, .none, .junkAfterBody, .none, .closeAfterResponse, .none, .none]))
            let mismatches = NIOLockedValueBox<[String]>([])
            let stalePosts = NIOLockedValueBox(0)
            let callers = 16
            let perCaller = 25
            try await withThrowingTaskGroup(of: Void.self) { group in
                for caller in 0..<callers {
                    group.addTask {
                        // Half the callers are Admins (principal Admin), half Readers.
                        let admin = caller % 2 == 0
                        let headers = [("X-Callout-Permission-Sets", admin ? "Admins" : "Readers")]
                        for i in 0..<perCaller {
                            let path = "/v2/caller-\(caller)/\(i)"
                            // Every third callout is a POST with a body of its own, checked by hash.
                            let body =
                                i % 3 == 0
                                ? "body of caller \(caller) callout \(i) " + String(repeating: "x", count: i * 37) : nil
                            let r = try await h.send(
                                body == nil ? .GET : .POST, h.service.proxyURL + "/callout:Acme/caller-\(caller)/\(i)",
                                body: body, headers: headers)
                            let echoedPath = r.json["path"] as? String
                            let client = Self.clientId(of: r, idp: h.idp)
                            let expected = admin ? "acme-admin" : "acme-reader"
                            let expectedHash = Self.sha256Hex(body ?? "")
                            // A POST that meets a connection the upstream closed unannounced is
                            // not sent again (it may have been acted on): 502, never a wrong answer.
                            if body != nil, r.status == 502, r.json["code"] as? String == "upstream_unavailable" {
                                stalePosts.withLockedValue { $0 += 1 }
                                continue
                            }
                            if r.status != 200 || echoedPath != path || client != expected
                                || r.json["body_sha256"] as? String != expectedHash
                            {
                                mismatches.withLockedValue {
                                    $0.append("\(path): \(r.status) \(echoedPath ?? r.body) \(client ?? "-")")
                                }
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let found = mismatches.withLockedValue { $0 }
            #expect(found.isEmpty, "\(found.count) of \(callers * perCaller): \(found.prefix(5))")
            // Only POSTs on connections the upstream had just closed may fail, and not most of them.
            #expect(stalePosts.withLockedValue { $0 } < callers * perCaller / 6)
            // The upstream's extra bytes were seen, counted and logged.
            let afterResponse = try await h.metric(
                "callout_upstream_desync_total", ["named_credential": "Acme", "reason": "bytes_after_response"])
            #expect((afterResponse ?? 0) > 0)
            #expect(h.logs.text.contains("upstream connection out of step with its requests"))
            // Never more connections than the limit allows, whatever the closes.
            #expect(h.service.proxy.pools.budget.total <= 2)
        }
    }

    @Test func anAnswerSentWhileTheConnectionIdlesClosesIt() async throws {
        let settings = "upstream_max_connections_per_host = 1"
        try await OpsHarness.with(config: { OpsHarness.config($0, proxySettings: settings) }) { h in
            h.upstream.setBehavior(.misbehaving([.extraResponseLater(seconds: 0.3), .none, .none, .none]))
            let a = try await h.callout("/callout:Acme/a")
            #expect(a.json["path"] as? String == "/v2/a")
            // The unasked answer arrives while the connection sits in the pool.
            for _ in 0..<200 {
                let seen = try await h.metric(
                    "callout_upstream_desync_total", ["named_credential": "Acme", "reason": "bytes_while_idle"])
                if (seen ?? 0) >= 1 { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(
                try await h.metric(
                    "callout_upstream_desync_total", ["named_credential": "Acme", "reason": "bytes_while_idle"]) == 1)
            let accepted = h.upstream.acceptedConnectionCount
            for name in ["b", "c", "d"] {
                let r = try await h.callout("/callout:Acme/\(name)")
                #expect(r.status == 200)
                #expect(r.json["path"] as? String == "/v2/\(name)", "\(name) got \(r.body)")
            }
            // The out-of-step connection was replaced, and the new one reused.
            #expect(h.upstream.acceptedConnectionCount == accepted + 1)
        }
    }

    @Test func reloadsKeepUpstreamConnectionsAndTheirLimit() async throws {
        let settings = "upstream_max_connections_per_host = 4"
        try await OpsHarness.with(config: { OpsHarness.config($0, proxySettings: settings) }) { h in
            for i in 0..<8 {
                let r = try await h.callout("/callout:Acme/warm/\(i)")
                #expect(r.status == 200)
            }
            let accepted = h.upstream.acceptedConnectionCount
            for generation in 2...7 {
                let outcome = h.service.reloader.reload(trigger: "test")
                #expect(outcome.applied)
                #expect(outcome.generation == generation)
                for i in 0..<4 {
                    let r = try await h.callout("/callout:Acme/after/\(generation)/\(i)")
                    #expect(r.status == 200)
                }
            }
            // Reloads of an unchanged file keep the pooled connections: none was opened again.
            #expect(h.upstream.acceptedConnectionCount == accepted)
            #expect(await h.service.proxy.openUpstreamConnections() <= 4)
        }
    }

    @Test func theConnectionLimitHoldsAcrossEventLoops() async throws {
        // Fewer connections allowed than there are event loops: the limit still holds in total.
        let settings = "upstream_max_connections_per_host = 1"
        try await OpsHarness.with(config: { OpsHarness.config($0, proxySettings: settings) }) { h in
            h.upstream.setBehavior(.slowHeaders(seconds: 0.05))
            let peak = NIOLockedValueBox(0)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for caller in 0..<6 {
                    group.addTask {
                        for i in 0..<4 {
                            let r = try await h.callout("/callout:Acme/limit/\(caller)/\(i)")
                            #expect(r.status == 200, "\(r.body)")
                            let now = h.service.proxy.pools.budget.total
                            peak.withLockedValue { $0 = max($0, now) }
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(peak.withLockedValue { $0 } <= 1)
        }
    }
}
