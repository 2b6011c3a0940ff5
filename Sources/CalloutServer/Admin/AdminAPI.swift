import CalloutCore
import CalloutTokens
import Foundation

/// The admin endpoints. Every answer is built from configured names, states and numbers:
/// never a token, assertion, key or secret.
public struct AdminAPI: Sendable {
    let runtime: RuntimeConfiguration
    let tokens: TokenService
    let metrics: ProxyMetrics
    let reloader: ConfigReloader
    let readiness: Readiness
    let openConnections: @Sendable () -> Int

    public func handle(_ request: AdminRequest) async -> AdminResponse {
        let settings = runtime.current.config.proxy
        if let refusal = AdminBrowserGuard.check(
            request, listen: settings.adminListen, tokenConfigured: settings.adminTokenSHA256 != nil)
        {
            return .problem(refusal)
        }
        switch AdminAccess.decide(
            path: request.path, peer: request.peer, authorization: request.header("authorization"),
            tokenSHA256: settings.adminTokenSHA256)
        {
        case .allow: break
        case .forbidden: return .problem(.adminForbidden())
        case .unauthorized: return .problem(.adminUnauthorized())
        }
        let method = request.method
        switch request.path {
        case "/healthz":
            guard method == "GET" || method == "HEAD" else { return .problem(.adminMethodNotAllowed(["GET"])) }
            return .json(JSON.object([("status", .string("alive"))]))
        case "/readyz":
            guard method == "GET" || method == "HEAD" else { return .problem(.adminMethodNotAllowed(["GET"])) }
            return readyz()
        case "/metrics":
            guard method == "GET" || method == "HEAD" else { return .problem(.adminMethodNotAllowed(["GET"])) }
            return .text(
                metrics.scrape(cache: tokens.cache.stats, openConnections: openConnections()),
                contentType: ProxyMetrics.contentType)
        case "/credentials":
            guard method == "GET" || method == "HEAD" else { return .problem(.adminMethodNotAllowed(["GET"])) }
            return .json(
                CredentialsView.render(
                    snapshot: runtime.current, cache: tokens.cache.snapshot(), readiness: readiness,
                    tokenStats: tokens.cache.stats))
        case "/tokens/refresh":
            guard method == "POST" else { return .problem(.adminMethodNotAllowed(["POST"])) }
            return await refresh(request)
        case "/tokens":
            guard method == "DELETE" else { return .problem(.adminMethodNotAllowed(["DELETE"])) }
            return removeTokens(request)
        case "/explain":
            guard method == "POST" else { return .problem(.adminMethodNotAllowed(["POST"])) }
            return explain(request)
        case "/reload":
            guard method == "POST" else { return .problem(.adminMethodNotAllowed(["POST"])) }
            return reload()
        default:
            return .problem(.adminNotFound(request.path))
        }
    }

    // MARK: - Readiness

    private func readyz() -> AdminResponse {
        let snapshot = runtime.current
        let waiting = readiness.waitingFor(
            externalCredentials: snapshot.config.externalCredentials.map(\.name),
            requireTokens: snapshot.config.proxy.readyRequiresTokens)
        // A refused reload leaves the previous configuration serving: still ready, with the reason.
        let refused = reloader.lastRefusal.map(\.description)
        var lastReload: [(String, JSONValue?)] =
            refused.isEmpty ? [] : [("reload_refused", JSON.strings(refused))]
        // A credential whose token endpoint is not discovered fails its callouts; others serve.
        let failures = tokens.discovery.failures
        let undiscovered = snapshot.config.externalCredentials.compactMap { credential in
            credential.identityProviderIssuer.flatMap { failures[$0.absoluteString] }.map {
                "\(credential.name): \($0.description)"
            }
        }
        if !undiscovered.isEmpty { lastReload.append(("token_endpoint_discovery_failed", JSON.strings(undiscovered))) }
        // The shared token store down is not a reason to be unready: callouts fetch locally.
        if let health = tokens.shared?.health {
            switch health.state {
            case .available: lastReload.append(("token_store", .string("available")))
            case .unavailable(_, _, let reason):
                lastReload.append(
                    ("token_store", .string("unavailable, tokens are fetched locally until it is back: \(reason)")))
            }
        }
        if waiting.isEmpty {
            return .json(
                JSON.object(
                    [("status", .string("ready")), ("generation", JSON.int(snapshot.generation))] + lastReload))
        }
        return .json(
            JSON.object(
                [
                    ("status", .string("not_ready")), ("generation", JSON.int(snapshot.generation)),
                    ("waiting_for", JSON.strings(waiting)),
                ] + lastReload), status: 503)
    }

    // MARK: - Tokens

    private func selection(_ request: AdminRequest, required: Bool) -> Result<
        (ExternalCredentialConfig, PrincipalConfig?)?, Problem
    > {
        let config = runtime.current.config
        guard let name = request.queryValue("external_credential"), !name.isEmpty else {
            if request.queryValue("principal") != nil || required {
                return .failure(.adminBadRequest("external_credential=NAME is required"))
            }
            return .success(nil)
        }
        guard let credential = config.externalCredential(name) else {
            return .failure(.adminNotFoundName("external_credential", name))
        }
        guard let principalName = request.queryValue("principal") else { return .success((credential, nil)) }
        guard let principal = credential.principal(principalName) else {
            return .failure(.adminNotFoundName("principal", principalName))
        }
        return .success((credential, principal))
    }

    private func refresh(_ request: AdminRequest) async -> AdminResponse {
        let chosen: (ExternalCredentialConfig, PrincipalConfig?)
        switch selection(request, required: true) {
        case .failure(let problem): return .problem(problem)
        case .success(let s): chosen = s!
        }
        let (credential, only) = chosen
        let dropped = tokens.cache.removeAll(externalCredential: credential.name, principal: only?.name)
        var results: [JSONValue] = []
        var failed: Problem? = nil
        for principal in only.map({ [$0] }) ?? credential.principals {
            let demand = TokenDemand(
                credential: credential, principal: principal, identity: CallerIdentity(), namedCredential: nil)
            do {
                let token = try await tokens.refresh(demand)
                results.append(
                    JSON.object([
                        ("principal", .string(principal.name)), ("outcome", .string("refreshed")),
                        ("expires_in_seconds", JSON.seconds(token.lifetime)),
                    ]))
            } catch let problem as Problem where problem.code == "formula_failed" {
                // The token depends on the caller (a formula reads $User...): the next callout fetches it.
                results.append(
                    JSON.object([
                        ("principal", .string(principal.name)), ("outcome", .string("dropped")),
                        ("detail", .string("depends on the caller; fetched on the next callout")),
                    ]))
            } catch let problem as Problem {
                failed = failed ?? problem
                results.append(
                    JSON.object([
                        ("principal", .string(principal.name)), ("outcome", .string("failed")),
                        ("code", .string(problem.code)), ("detail", .string(problem.detail)),
                    ]))
            } catch {
                let problem = Problem(
                    status: 502, code: "token_exchange_failed", title: "Token refresh failed",
                    detail: "principal \(principal.name): the token could not be fetched")
                failed = failed ?? problem
                results.append(
                    JSON.object([
                        ("principal", .string(principal.name)), ("outcome", .string("failed")),
                        ("code", .string(problem.code)),
                    ]))
            }
        }
        if let failed {
            var problem = failed
            problem.detail = "external_credential \(credential.name): \(problem.detail)"
            return .problem(problem, extra: [("results", .array(results)), ("dropped", JSON.int(dropped))])
        }
        return .json(
            JSON.object([
                ("external_credential", .string(credential.name)), ("dropped", JSON.int(dropped)),
                ("results", .array(results)),
            ]))
    }

    private func removeTokens(_ request: AdminRequest) -> AdminResponse {
        switch selection(request, required: false) {
        case .failure(let problem):
            return .problem(problem)
        case .success(nil):
            return .json(JSON.object([("removed", JSON.int(tokens.cache.invalidateAll { _ in true }))]))
        case .success(.some((let credential, let principal))):
            let removed = tokens.cache.removeAll(externalCredential: credential.name, principal: principal?.name)
            return .json(
                JSON.object([
                    ("external_credential", .string(credential.name)), ("principal", JSON.string(principal?.name)),
                    ("removed", JSON.int(removed)),
                ]))
        }
    }

    // MARK: - Explain

    private func explain(_ request: AdminRequest) -> AdminResponse {
        let parsed: ExplainRequest
        switch ExplainRequest.parse(request) {
        case .failure(let problem): return .problem(problem)
        case .success(let p): parsed = p
        }
        let explanation = CalloutExplainer.explain(
            snapshot: runtime.current, tokens: tokens.preparation, method: parsed.method, url: parsed.url,
            headers: parsed.headers, peer: parsed.from)
        guard parsed.wantsJSON else { return .text(explanation.text + "\n") }
        return .json(
            JSON.object([
                ("outcome", .string(explanation.problem == nil ? "forward" : "refuse")),
                (
                    "problem",
                    explanation.problem.map {
                        JSON.object([
                            ("status", JSON.int($0.status)), ("code", .string($0.code)), ("detail", .string($0.detail)),
                        ])
                    }
                ),
                ("lines", JSON.strings(explanation.lines)),
            ]))
    }

    // MARK: - Reload

    private func reload() -> AdminResponse {
        let outcome = reloader.reload(trigger: "admin")
        guard outcome.applied else {
            let problem = Problem(
                status: 422, code: "reload_failed", title: "Configuration not reloaded",
                detail:
                    "The new configuration has \(outcome.errors.count) problem\(outcome.errors.count == 1 ? "" : "s"); still serving generation \(outcome.generation)."
            )
            return .problem(
                problem, extra: [("issues", JSON.issues(outcome.errors)), ("generation", JSON.int(outcome.generation))])
        }
        return .json(
            JSON.object([
                ("status", .string("reloaded")), ("generation", JSON.int(outcome.generation)),
                ("warnings", JSON.strings(outcome.warnings)),
                (
                    "dropped_tokens",
                    .array(
                        outcome.droppedTokens.map {
                            JSON.object([
                                ("external_credential", .string($0.externalCredential)),
                                ("entries", JSON.int($0.entries)),
                            ])
                        })
                ),
            ]))
    }
}

/// The body of `POST /explain`: JSON `{"method","url","headers","from"}` (headers as an object,
/// an array of `[name, value]` pairs, or an array of `"Name: value"` strings), or text: a first
/// line `METHOD URL`, then `Name: value` header lines; `?from=ADDRESS` sets the caller's address.
struct ExplainRequest {
    var method: String
    var url: String
    var headers: [(String, String)]
    var from: String
    var wantsJSON: Bool

    static func parse(_ request: AdminRequest) -> Result<ExplainRequest, Problem> {
        let text = String(decoding: request.body, as: UTF8.self)
        let isJSON =
            request.header("content-type")?.lowercased().contains("json") == true
            || text.drop(while: \.isWhitespace).first == "{"
        let wantsJSON = isJSON || request.header("accept")?.lowercased().contains("json") == true
        var from = request.queryValue("from") ?? "127.0.0.1"
        if isJSON {
            guard let object = (try? JSONSerialization.jsonObject(with: Data(request.body))) as? [String: Any] else {
                return .failure(.adminBadRequest("the body is not a JSON object"))
            }
            guard let url = object["url"] as? String else {
                return .failure(.adminBadRequest("\"url\" is required"))
            }
            var headers: [(String, String)] = []
            if let h = object["headers"] as? [String: Any] {
                for key in h.keys.sorted() {
                    if let v = h[key] as? String { headers.append((key, v)) }
                    if let vs = h[key] as? [String] { headers += vs.map { (key, $0) } }
                }
            } else if let h = object["headers"] as? [Any] {
                for item in h {
                    if let pair = item as? [String], pair.count == 2 { headers.append((pair[0], pair[1])) }
                    if let line = item as? String, let header = headerLine(line) { headers.append(header) }
                }
            }
            if let f = object["from"] as? String { from = f }
            let method = ((object["method"] as? String) ?? "GET").uppercased()
            return .success(ExplainRequest(method: method, url: url, headers: headers, from: from, wantsJSON: true))
        }
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        guard let first = lines.first else {
            return .failure(.adminBadRequest("send 'METHOD URL' on the first line, then 'Name: value' headers"))
        }
        let words = first.split(separator: " ", omittingEmptySubsequences: true)
        let (method, url) = words.count >= 2 ? (String(words[0]).uppercased(), String(words[1])) : ("GET", first)
        var headers: [(String, String)] = []
        for (i, line) in lines.enumerated().dropFirst() {
            guard let header = headerLine(line) else {
                return .failure(.adminBadRequest("line \(i + 1) must look like 'Name: value'"))
            }
            headers.append(header)
        }
        return .success(ExplainRequest(method: method, url: url, headers: headers, from: from, wantsJSON: wantsJSON))
    }

    static func headerLine(_ line: String) -> (String, String)? {
        guard let colon = line.firstIndex(of: ":") else { return nil }
        return (
            String(line[..<colon]).trimmingCharacters(in: .whitespaces),
            String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
        )
    }
}
