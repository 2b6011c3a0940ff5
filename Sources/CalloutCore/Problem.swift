/// An error the proxy itself answers with: `application/problem+json` (RFC 9457) carrying a
/// stable `code`. Details name configuration and the failure, never a secret.
public struct Problem: Error, Sendable, Equatable {
    public var status: Int
    public var code: String
    public var title: String
    public var detail: String
    public var namedCredential: String?
    /// Seconds, sent as `Retry-After` (identity provider backoff).
    public var retryAfter: Int?
    /// Extra response headers (e.g. `Proxy-Authenticate`).
    public var headers: [(String, String)]

    public init(
        status: Int, code: String, title: String, detail: String, namedCredential: String? = nil,
        retryAfter: Int? = nil, headers: [(String, String)] = []
    ) {
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.namedCredential = namedCredential
        self.retryAfter = retryAfter
        self.headers = headers
    }

    public static func == (a: Problem, b: Problem) -> Bool {
        a.status == b.status && a.code == b.code && a.detail == b.detail && a.namedCredential == b.namedCredential
    }

    public static let contentType = "application/problem+json"

    /// The members of the JSON body.
    public var jsonMembers: [String: JSONValue] {
        var members: [String: JSONValue] = [
            "type": .string("https://callout-proxy.dev/problems/\(code.replacingOccurrences(of: "_", with: "-"))"),
            "title": .string(title),
            "status": .integer(Int64(status)),
            "detail": .string(detail),
            "code": .string(code),
        ]
        if let namedCredential { members["named_credential"] = .string(namedCredential) }
        if let retryAfter { members["retry_after"] = .integer(Int64(retryAfter)) }
        return members
    }

    /// The JSON body (keys sorted), ending in a newline.
    public var json: String { JSONValue.object(jsonMembers).jsonText + "\n" }

    // MARK: - The catalogue

    public static func unknownNamedCredential(_ alias: String?) -> Problem {
        Problem(
            status: 404, code: "unknown_named_credential", title: "Unknown named credential",
            detail: alias.map {
                "No named credential is called '\(CallerText.printable($0))'; the proxy forwards only to configured named credentials."
            }
                ?? "The request does not name a named credential. Use http://Alias/path through the proxy, /callout:Alias/path, or Host: Alias."
        )
    }

    public static func disabled(_ alias: String) -> Problem {
        Problem(
            status: 403, code: "named_credential_disabled", title: "Named credential disabled",
            detail: "Named credential '\(alias)' is disabled.", namedCredential: alias)
    }

    public static func connect() -> Problem {
        Problem(
            status: 405, code: "method_not_allowed", title: "CONNECT is not supported",
            detail:
                "Tokens cannot be injected into a TLS tunnel. Send plain HTTP to the alias (http://Alias/path) and the proxy forwards it over HTTPS.",
            headers: [("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")])
    }

    public static func proxyAuthenticationRequired() -> Problem {
        Problem(
            status: 407, code: "proxy_authentication_required", title: "Proxy authentication required",
            detail: "This address is not a trusted caller; authenticate with Proxy-Authorization (Bearer or Basic).",
            headers: [
                ("Proxy-Authenticate", "Bearer realm=\"callout-proxy\""),
                ("Proxy-Authenticate", "Basic realm=\"callout-proxy\""),
            ])
    }

    /// Says where permission sets and profiles are read from, and whether any arrived.
    public static func noPrincipal(
        _ alias: String, credential: String, identity: CallerIdentity, settings: ProxySettings
    ) -> Problem {
        let sources =
            "the \(settings.permissionSetsHeader) and \(settings.profileHeader) headers"
            + (identity.callerName.map { " and caller '\(CallerText.printable($0))'" } ?? "")
        let detail: String
        if identity.permissionSets.isEmpty && identity.profile == nil {
            detail =
                "No permission set or profile arrived (read from \(sources)), so no principal of external credential '\(credential)' applies."
        } else {
            let shown = identity.permissionSets.prefix(5).map { "'\(CallerText.printable($0))'" }
            let more = identity.permissionSets.count > 5 ? " and \(identity.permissionSets.count - 5) more" : ""
            let sets = shown.isEmpty ? "none" : shown.joined(separator: ", ") + more
            let profile = identity.profile.map { "'\(CallerText.printable($0))'" } ?? "none"
            detail =
                "The caller's permission sets (\(sets)) and profile (\(profile)), read from \(sources), qualify for no principal of external credential '\(credential)'."
        }
        return Problem(
            status: 403, code: "no_principal", title: "No principal for this caller", detail: detail,
            namedCredential: alias)
    }

    public static func principalNotAllowed(_ alias: String, requested: String) -> Problem {
        Problem(
            status: 403, code: "principal_not_allowed", title: "Requested principal not allowed",
            detail: "The caller does not qualify for principal '\(CallerText.printable(requested))'.",
            namedCredential: alias)
    }

    public static func badRequest(_ detail: String, alias: String? = nil) -> Problem {
        Problem(status: 400, code: "bad_request", title: "Bad request", detail: detail, namedCredential: alias)
    }

    public static func requestTooLarge(limit: Int, alias: String? = nil) -> Problem {
        Problem(
            status: 413, code: "request_too_large", title: "Request body too large",
            detail: "The request body exceeds max_request_body_bytes (\(limit) bytes).", namedCredential: alias)
    }

    public static func headersTooLarge(limit: Int) -> Problem {
        Problem(
            status: 431, code: "request_header_fields_too_large", title: "Request header fields too large",
            detail: "The request head exceeds max_header_bytes (\(limit) bytes).")
    }

    public static func upstreamUnavailable(_ alias: String, reason: String) -> Problem {
        Problem(
            status: 502, code: "upstream_unavailable", title: "Upstream unavailable",
            detail: "The endpoint of '\(alias)' could not be reached: \(reason).", namedCredential: alias)
    }

    public static func upstreamTimeout(_ alias: String, seconds: Int) -> Problem {
        Problem(
            status: 504, code: "upstream_timeout", title: "Upstream timeout",
            detail: "The callout did not complete within request_timeout_seconds (\(seconds) s).",
            namedCredential: alias)
    }

    public static func upstreamConnectTimeout(_ alias: String, seconds: Int) -> Problem {
        Problem(
            status: 504, code: "upstream_timeout", title: "Upstream timeout",
            detail: "Connecting to the endpoint took longer than connect_timeout_seconds (\(seconds) s).",
            namedCredential: alias)
    }

    public static func formulaFailed(_ alias: String?, location: String, message: String) -> Problem {
        Problem(
            status: 400, code: "formula_failed", title: "Formula evaluation failed", detail: "\(location): \(message)",
            namedCredential: alias)
    }
}

/// Caller-supplied text quoted in a message.
public enum CallerText {
    /// Printable ASCII only, at most 100 characters.
    public static func printable(_ s: String) -> String {
        String(s.unicodeScalars.prefix(100).map { $0.value >= 0x20 && $0.value < 0x7F ? Character($0) : "?" })
    }
}
