import CalloutDevTools
import CalloutServer
import Foundation
import NIOCore
import NIOHTTP1

/// The sample callouts `demo --run-sample` performs, each checked against what it should show.
struct DemoSample {
    let env: LocalEnvironment
    let proxy: CalloutProxyService
    let observer: DemoObserver

    enum TokenOutcome: String {
        case fetched = "token fetched"
        case cached = "token cached"
        case refreshed = "token refreshed once after a 401, request retried"
        case none = "no token"
    }

    struct Step {
        var title: String
        var method: HTTPMethod = .GET
        /// `http://Acme/...` (forward-proxy form) or `/callout:Acme/...` (path form).
        var target: String
        var headers: [(String, String)]
        var expectedStatus: Int
        var expectedPrincipal: String?
        var expectedToken: TokenOutcome
        var expectedProblem: String? = nil
        /// Revoke this token at the identity provider before sending.
        var revokeFirst: String? = nil
    }

    struct Observed {
        var status = 0
        var principal: String?
        var token = TokenOutcome.none
        var problem: String?
        var upstreamAuthorization: String?
        var lines: [String] = []
    }

    private static let readers = ("X-Callout-Permission-Sets", "Acme_Readers")
    private static let finance = ("X-Callout-User-Department", "Finance")

    /// Runs every step, prints each result; true when every outcome matched.
    func run(say: (String) -> Void) async -> Bool {
        say("Sample callouts (what the commands above do), each checked:\n")
        let steps: [Step] = [
            Step(
                title: "forward-proxy form (HTTP_PROXY / curl -x), Acme_Readers, Department Finance",
                target: "http://Acme/items?x=1", headers: [Self.readers, Self.finance], expectedStatus: 200,
                expectedPrincipal: "Reader", expectedToken: .fetched),
            Step(
                title: "path form, same caller again",
                target: "/callout:Acme/items?x=2", headers: [Self.readers, Self.finance], expectedStatus: 200,
                expectedPrincipal: "Reader", expectedToken: .cached),
            Step(
                title: "path form, Acme_Admins and Acme_Readers, Department Engineering",
                target: "/callout:Acme/orders",
                headers: [
                    ("X-Callout-Permission-Sets", "Acme_Admins, Acme_Readers"),
                    ("X-Callout-User-Department", "Engineering"),
                ], expectedStatus: 200, expectedPrincipal: "Admin", expectedToken: .fetched),
            Step(
                title: "forward-proxy form, no permission set", target: "http://Acme/items", headers: [],
                expectedStatus: 403, expectedPrincipal: nil, expectedToken: .none, expectedProblem: "no_principal"),
        ]
        var allMatched = true
        var firstToken: String?
        for (index, step) in steps.enumerated() {
            let observed = await perform(step)
            allMatched = report(index + 1, step, observed, say: say) && allMatched
            if index == 0 { firstToken = observed.upstreamAuthorization.map { String($0.dropFirst("Bearer ".count)) } }
        }
        let number = steps.count + 1
        if let firstToken {
            let step = Step(
                title: "revoked token: the identity provider revokes Reader's token, then the call is repeated",
                target: "http://Acme/items?x=3", headers: [Self.readers, Self.finance], expectedStatus: 200,
                expectedPrincipal: "Reader", expectedToken: .refreshed, revokeFirst: firstToken)
            allMatched = report(number, step, await perform(step), say: say) && allMatched
        } else {
            say("[\(number)] revoked-token refresh: skipped, sample 1 saw no token  MISMATCH\n")
            allMatched = false
        }
        say(
            allMatched
                ? "All \(number) sample outcomes matched."
                : "Some sample outcomes did NOT match (marked MISMATCH above).")
        say("")
        return allMatched
    }

    private func perform(_ step: Step) async -> Observed {
        let idp = env.identityProvider
        let upstream = env.upstream
        var observed = Observed()
        if let token = step.revokeFirst {
            idp.revoke(token: token)
            observed.lines.append("identity provider revoked Reader's token \(shortToken(token))")
        }
        let idpBefore = idp.tokenRequestCount
        let upstreamBefore = upstream.requestCount
        let recordIndex = observer.count
        let response: RawHTTPClient.Response
        do {
            let headers = step.headers + [("Host", step.target.hasPrefix("/") ? hostHeader : "Acme")]
            response = try await RawHTTPClient.send(
                to: proxy.listenAddress,
                head: HTTPRequestHead(
                    version: .http1_1, method: step.method, uri: step.target, headers: HTTPHeaders(headers)))
        } catch {
            observed.lines.append("request failed: \(error)")
            return observed
        }
        observed.status = response.status
        let record = await observer.waitForRecord(at: recordIndex)
        observed.principal = record?.principal
        let json = (try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [String: Any]
        observed.problem = record?.problemCode ?? json?["code"] as? String
        let fetches = idp.tokenRequestCount - idpBefore
        let upstreamCalls = Array(upstream.requests.suffix(max(0, upstream.requestCount - upstreamBefore)))

        if let p = DemoSetup.principal(named: observed.principal) {
            observed.lines.append(
                "principal  \(p.name) (sequence \(p.sequence), client_id \(p.clientId), via \(p.permissionSet))")
        } else {
            observed.lines.append("principal  none: no principal's permission sets or profiles match the caller's")
        }
        let issued = idp.requests.suffix(fetches)
        switch (fetches, record?.retried ?? false) {
        case (0, _):
            observed.token = record?.principal == nil ? .none : .cached
            if observed.token == .cached {
                observed.lines.append("token      cached: no call to the identity provider")
            }
        case (1, false):
            observed.token = .fetched
        case (1, true):
            observed.token = .refreshed
        default:
            observed.lines.append("token      \(fetches) token requests")
        }
        let verb = observed.token == .refreshed ? "refreshed" : "fetched"
        for r in issued {
            let jti = r.claims["jti"].map { String($0.prefix(8)) + "…" } ?? "-"
            observed.lines.append(
                "token      \(verb): identity provider answered \(r.status) to client_id \(r.clientId ?? "-") "
                    + "(assertion verified: RS256 signature, aud, exp, jti \(jti)), scope \(r.scope ?? "-")")
        }
        for call in upstreamCalls {
            let target = call.query.map { "\(call.path)?\($0)" } ?? call.path
            let bearer = call.authorization.map { "Authorization: Bearer " + shortToken(String($0.dropFirst(7))) }
            observed.lines.append(
                "upstream   saw \(call.method) \(target) with \(bearer ?? "no Authorization"), answered \(call.status)")
        }
        observed.upstreamAuthorization = upstreamCalls.last?.authorization
        if upstreamCalls.isEmpty { observed.lines.append("upstream   not called; identity provider not called") }
        if step.expectedToken == .refreshed, upstreamCalls.count != 2 || upstreamCalls.first?.status != 401 {
            observed.lines.append("expected the endpoint to answer 401 once, then 200 to the retry")
            observed.token = .none
        }
        return observed
    }

    private var hostHeader: String {
        let url = proxy.proxyURL
        return String(url.dropFirst("http://".count))
    }

    private func report(_ number: Int, _ step: Step, _ observed: Observed, say: (String) -> Void) -> Bool {
        say("[\(number)] \(step.title)")
        let headers = step.headers.map { "\($0.0): \($0.1)" }.joined(separator: ", ")
        say("    \(step.method.rawValue) \(step.target)\(headers.isEmpty ? "" : "  [\(headers)]")")
        for line in observed.lines { say("    \(line)") }
        var expected = "\(step.expectedStatus)"
        if let p = step.expectedPrincipal { expected += ", principal \(p)" }
        if step.expectedToken != .none { expected += ", \(step.expectedToken.rawValue)" }
        if let code = step.expectedProblem { expected += ", \(code)" }
        var got = "\(observed.status)"
        if let p = observed.principal { got += ", principal \(p)" }
        if observed.token != .none { got += ", \(observed.token.rawValue)" }
        if let code = observed.problem { got += ", \(code)" }
        let matched =
            observed.status == step.expectedStatus && observed.principal == step.expectedPrincipal
            && observed.token == step.expectedToken && observed.problem == step.expectedProblem
        say("    result     \(got)")
        say("    expected   \(expected)  \(matched ? "ok" : "MISMATCH")")
        say("")
        return matched
    }
}
