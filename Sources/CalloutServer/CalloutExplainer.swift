import CalloutCore
import CalloutTokens
import Foundation

/// The `explain` dry run: what the proxy would do with a request, without calling anything.
/// The token is shown as `<redacted>`.
public enum CalloutExplainer {
    public struct Explanation: Sendable {
        public var lines: [String]
        public var problem: Problem?
        public var text: String { lines.joined(separator: "\n") }
    }

    /// - Parameters:
    ///   - url: `http://Alias/path`, `/callout:Alias/path`, or a path with a `Host` header.
    ///   - peer: the caller's address (decides whether identity headers are believed).
    public static func explain(
        snapshot: RuntimeConfiguration.Snapshot, tokens: TokenPreparation?, method: String, url: String,
        headers: [(String, String)], peer: String
    ) -> Explanation {
        var lines: [String] = []
        let config = snapshot.config
        var alias: String? = nil
        let peerBytes = IPAddress.parse(peer)
        lines.append("request:            \(method) \(url) from \(peer)")
        let routed: RoutedCallout
        // An absolute URL stands for the request a client sends through the proxy, Host included.
        var headers = headers
        if !url.hasPrefix("/"), !headers.contains(where: { $0.0.caseInsensitiveEquals("host") }),
            let authority = url.split(separator: "/", omittingEmptySubsequences: true).dropFirst().first
        {
            headers.insert(("Host", String(authority)), at: 0)
        }
        switch CalloutRouter.route(
            config: config, identityResolver: snapshot.identity, method: method, target: url, headers: headers,
            peer: peerBytes, alias: &alias)
        {
        case .success(let r): routed = r
        case .failure(let problem):
            if let alias { lines.append("named credential:   \(alias)") }
            lines.append("outcome:            \(problem.status) \(problem.code): \(problem.detail)")
            lines.append("nothing would be forwarded and no token fetched")
            return Explanation(lines: lines, problem: problem)
        }
        let named = routed.named
        let id = routed.identity
        lines.append("named credential:   \(named.name) (\(named.label))")
        lines.append("endpoint:           \(routed.targetURL)")
        lines.append(
            "external credential: \(routed.credential.name), \(Self.flow(routed.credential)), token from \(routed.credential.tokenEndpointDescription)"
        )
        var who = id.callerName.map { "caller \($0)" } ?? "trusted address"
        who += "; permission sets: " + (id.permissionSets.isEmpty ? "none" : id.permissionSets.joined(separator: ", "))
        who += "; profile: " + (id.profile ?? "none")
        lines.append("identity:           \(who)")
        if !id.user.isEmpty {
            lines.append(
                "user fields:        " + id.user.keys.sorted().map { "\($0)=\(id.user[$0]!)" }.joined(separator: ", "))
        }
        lines.append("candidate principals (lowest sequence wins):")
        for p in routed.credential.principals {
            let qualifies = routed.candidates.contains { $0.name == p.name }
            let mark = p.name == routed.principal.name ? "→" : (qualifies ? "·" : " ")
            lines.append(
                "  \(mark) \(p.sequenceNumber). \(p.name) as \(p.clientId)\(qualifies ? "" : " (does not qualify)")")
        }
        let demand = TokenDemand(
            credential: routed.credential, principal: routed.principal, identity: id, namedCredential: named)
        if let tokens {
            do {
                let prepared = try tokens.prepare(demand)
                lines.append("scope:              \(prepared.scope ?? "(none)")")
                for c in prepared.claims { lines.append("claim \(c.name): \(c.value)") }
                for h in prepared.header { lines.append("assertion header \(h.name): \(h.value)") }
            } catch let problem as Problem {
                lines.append("outcome:            \(problem.status) \(problem.code): \(problem.detail)")
                return Explanation(lines: lines, problem: problem)
            } catch {}
        }
        lines.append("headers sent upstream:")
        let custom = OutboundHeaders.customHeaderOrder(
            named: named.customHeaders, external: routed.credential.customHeaders)
        let context = FormulaContext(
            user: id.user,
            credentials: [
                routed.credential.name: routed.credential.formulaParameters(
                    principal: routed.principal, accessToken: "<redacted>")
            ], allowSecrets: true, namedCredentialName: named.name, namedCredentialURL: named.url.absoluteString)
        var evaluated: [(String, String)] = []
        for (h, _) in custom {
            let value = (try? h.value.evaluate(in: context)) ?? "<formula fails: \(h.value.source)>"
            evaluated.append((h.name, value))
        }
        let outbound = OutboundHeaders.build(
            incoming: headers, isIdentityHeader: snapshot.identity.isIdentityHeader, customHeaders: evaluated,
            authorization: named.generateAuthorizationHeader ? "Bearer <redacted>" : nil, host: named.hostHeader,
            via: "1.1 callout-proxy")
        for (name, value) in outbound {
            lines.append(
                "  \(name): \(name.lowercased() == "authorization" && !named.generateAuthorizationHeader ? "<caller's>" : value)"
            )
        }
        let codes = ([401] + routed.credential.additionalRefreshStatusCodes).map(String.init).joined(separator: ", ")
        lines.append("refresh and retry once on: \(codes)")
        return Explanation(lines: lines, problem: nil)
    }
}

extension CalloutExplainer {
    /// How the credential gets its tokens, in a few words: the assertion flow keeps its algorithm alone.
    static func flow(_ credential: ExternalCredentialConfig) -> String {
        switch credential.flow {
        case .clientCredentialsJWTAssertion: credential.signingAlgorithm.rawValue
        case .jwtBearer: "JWT bearer grant (\(credential.signingAlgorithm.rawValue))"
        case .clientCredentialsClientSecret: "client credentials (\(credential.clientAuthentication.rawValue))"
        }
    }
}
