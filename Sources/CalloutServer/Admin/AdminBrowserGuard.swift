import CalloutCore

/// Keeps web pages away from the admin listener. A page cannot read admin answers across
/// origins, but it can send requests with side effects (cross-site request forgery: a form
/// posting to `/reload`), and after DNS rebinding it can read them too.
///
/// - A request that says it comes from another site (`Sec-Fetch-Site` other than `same-origin`
///   or `none`, or an `Origin` that is not the admin listener's own) is refused.
/// - Without `admin_token_sha256`, `Host` must be a loopback name or address or the admin
///   listen address (with a token, a rebound page still cannot authenticate).
/// - POST and DELETE need a header a page cannot send without a CORS preflight, which the
///   listener never grants: `Authorization`, `X-Callout-Admin`, or a `Content-Type` other than
///   the three a plain form may use.
enum AdminBrowserGuard {
    /// The header command-line clients add to admin POST and DELETE requests (any value).
    static let customHeader = "X-Callout-Admin"

    static func check(_ request: AdminRequest, listen: HostPort?, tokenConfigured: Bool) -> Problem? {
        if let site = request.header("sec-fetch-site")?.lowercased(), site != "same-origin", site != "none" {
            return .crossSiteRequest("Sec-Fetch-Site: \(CallerText.printable(site))")
        }
        if let origin = request.header("origin"), !isOwnOrigin(origin, listen: listen) {
            return .crossSiteRequest("Origin: \(CallerText.printable(origin))")
        }
        let hosts = request.headers.filter { $0.0.caseInsensitiveEquals("host") }
        if hosts.count > 1 { return .adminBadRequest("the request has more than one Host header") }
        if !tokenConfigured, let host = hosts.first?.1,
            !HostCheck.accepts(host, listen: listen, isAlias: { _ in false })
        {
            return .misdirectedRequest(host)
        }
        if request.method == "POST" || request.method == "DELETE", !hasPreflightedHeader(request) {
            return .simpleRequestRefused()
        }
        return nil
    }

    /// `http://127.0.0.1:9901`, `http://localhost:9901` and the like: the listener's own origin.
    static func isOwnOrigin(_ origin: String, listen: HostPort?) -> Bool {
        guard origin.lowercased().hasPrefix("http://") else { return false }
        let authority = origin.dropFirst("http://".count)
        guard !authority.contains("/") else { return false }
        return HostCheck.accepts(String(authority), listen: listen, isAlias: { _ in false })
    }

    /// Headers a cross-site page can only send after a CORS preflight (Fetch standard's
    /// CORS-safelisted request headers and content types are the ones it can send freely).
    static func hasPreflightedHeader(_ request: AdminRequest) -> Bool {
        if request.header("authorization") != nil || request.header(customHeader) != nil { return true }
        guard let contentType = request.header("content-type") else { return false }
        let essence =
            contentType.split(separator: ";").first.map { String($0.filter { $0 != " " && $0 != "\t" }).lowercased() }
            ?? ""
        return !["application/x-www-form-urlencoded", "multipart/form-data", "text/plain", ""].contains(essence)
    }
}

extension Problem {
    static func crossSiteRequest(_ evidence: String) -> Problem {
        Problem(
            status: 403, code: "cross_site_request", title: "Cross-site request refused",
            detail: "The admin endpoints do not answer requests from web pages (\(evidence)).")
    }

    static func simpleRequestRefused() -> Problem {
        Problem(
            status: 403, code: "admin_header_required", title: "Admin header required",
            detail:
                "POST and DELETE admin requests need \(AdminBrowserGuard.customHeader): 1, Authorization, or a Content-Type such as application/json, so a web form cannot send them."
        )
    }
}
