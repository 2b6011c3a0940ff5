import CalloutCore
import CalloutTokens
import Foundation

/// One admin request, read whole (bodies are small).
public struct AdminRequest: Sendable {
    public var method: String
    /// Path without the query.
    public var path: String
    public var query: [(String, String)]
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// The peer's address, e.g. `127.0.0.1`.
    public var peer: String?

    public init(
        method: String, target: String, headers: [(String, String)] = [], body: [UInt8] = [], peer: String?
    ) {
        self.method = method
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        self.path = parts.first.map(String.init) ?? "/"
        self.query = parts.count > 1 ? Self.parseQuery(String(parts[1])) : []
        self.headers = headers
        self.body = body
        self.peer = peer
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.0.caseInsensitiveEquals(name) }?.1
    }

    public func queryValue(_ name: String) -> String? { query.first { $0.0 == name }?.1 }

    static func parseQuery(_ text: String) -> [(String, String)] {
        text.split(separator: "&").map { pair in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s)
            }
            return (decode(kv[0]), kv.count > 1 ? decode(kv[1]) : "")
        }
    }
}

/// One admin answer.
public struct AdminResponse: Sendable {
    public var status: Int
    public var contentType: String
    public var body: String
    public var headers: [(String, String)] = []

    public static func json(_ value: JSONValue, status: Int = 200) -> AdminResponse {
        AdminResponse(status: status, contentType: "application/json", body: value.prettyJSONText + "\n")
    }

    public static func text(_ text: String, status: Int = 200, contentType: String = "text/plain; charset=utf-8")
        -> AdminResponse
    {
        AdminResponse(status: status, contentType: contentType, body: text)
    }

    /// problem+json, with extra members (such as `issues`) beside the standard ones.
    public static func problem(_ problem: Problem, extra: [(String, JSONValue)] = []) -> AdminResponse {
        var members = problem.jsonMembers
        for (name, value) in extra { members[name] = value }
        var response = AdminResponse(
            status: problem.status, contentType: Problem.contentType, body: JSONValue.object(members).jsonText + "\n")
        response.headers = problem.headers
        if let retryAfter = problem.retryAfter { response.headers.append(("Retry-After", String(retryAfter))) }
        return response
    }
}

/// Building JSON answers.
enum JSON {
    static func object(_ members: [(String, JSONValue?)]) -> JSONValue {
        var object: [String: JSONValue] = [:]
        for (name, value) in members {
            if let value { object[name] = value }
        }
        return .object(object)
    }

    static func string(_ s: String?) -> JSONValue? { s.map { .string($0) } }
    static func int(_ i: Int) -> JSONValue { .integer(Int64(i)) }
    static func seconds(_ d: Double?) -> JSONValue? { d.map { .number(($0 * 10).rounded() / 10) } }
    static func strings(_ a: [String]) -> JSONValue { .array(a.map { .string($0) }) }

    static func issues(_ issues: [ConfigIssue]) -> JSONValue { ConfigIssueJSON.array(issues) }
}

extension Problem {
    static func adminNotFound(_ path: String) -> Problem {
        Problem(
            status: 404, code: "not_found", title: "Not found",
            detail:
                "No admin endpoint at '\(CallerText.printable(path))'. Endpoints: GET /healthz, /readyz, /metrics, /credentials; POST /tokens/refresh, /explain, /reload; DELETE /tokens."
        )
    }

    static func adminMethodNotAllowed(_ allowed: [String]) -> Problem {
        Problem(
            status: 405, code: "method_not_allowed", title: "Method not allowed",
            detail: "This admin endpoint accepts \(allowed.joined(separator: ", ")).",
            headers: [("Allow", allowed.joined(separator: ", "))])
    }

    static func adminForbidden() -> Problem {
        Problem(
            status: 403, code: "admin_forbidden", title: "Admin access refused",
            detail:
                "The admin endpoints answer only loopback peers unless admin_token_sha256 is set (then with Authorization: Bearer <token>)."
        )
    }

    static func adminUnauthorized() -> Problem {
        Problem(
            status: 401, code: "admin_unauthorized", title: "Admin token required",
            detail: "Send Authorization: Bearer <token> whose SHA-256 is admin_token_sha256.",
            headers: [("WWW-Authenticate", "Bearer realm=\"callout-proxy-admin\"")])
    }

    static func adminBadRequest(_ detail: String) -> Problem {
        Problem(status: 400, code: "bad_request", title: "Bad request", detail: detail)
    }

    static func adminNotFoundName(_ kind: String, _ name: String) -> Problem {
        Problem(
            status: 404, code: "unknown_\(kind)", title: "Unknown \(kind.replacingOccurrences(of: "_", with: " "))",
            detail: "No \(kind) is called '\(CallerText.printable(name))'.")
    }
}
