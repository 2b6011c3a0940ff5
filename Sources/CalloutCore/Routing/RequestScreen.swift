/// Checks of a request head that come before addressing: methods the proxy never forwards,
/// the `Host` header's count and value, and `OPTIONS` with `Max-Forwards: 0`, which the proxy
/// answers itself.
public enum RequestScreen {
    /// The methods the proxy forwards, for `Allow`.
    public static let forwardedMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

    /// The request's one `Host` value (nil for an HTTP/1.0 request without one), or the problem
    /// that answers it.
    public static func screen(
        config: ProxyConfig, method: String, target: String, headers: [(String, String)],
        httpVersion: (major: Int, minor: Int)
    ) -> Result<String?, Problem> {
        // TRACE echoes the request, injected Authorization included, back to the caller.
        if method == "TRACE" || method == "TRACK" { return .failure(.methodNotForwarded(method)) }
        var host: String? = nil
        for (name, value) in headers where name.caseInsensitiveEquals("host") {
            // RFC 9112 §3.2: more than one Host is a 400; which one a server believes differs.
            if host != nil { return .failure(.badRequest("the request has more than one Host header")) }
            host = value
        }
        if host == nil, httpVersion.major == 1, httpVersion.minor >= 1 {
            return .failure(.badRequest("an HTTP/1.1 request must have a Host header"))
        }
        // Absolute-form: the target names the alias and `Host` is not consulted, so it cannot
        // be what a rebound browser sent (browsers send origin-form unless told to use a proxy).
        // The alias check goes through the configuration's name index.
        if target.hasPrefix("/"), let host,
            !HostCheck.accepts(
                host, listen: config.proxy.listen, extraNames: config.proxy.allowedHosts,
                isAlias: { config.namedCredentialName($0) != nil })
        {
            return .failure(.misdirectedRequest(host))
        }
        if method == "OPTIONS", let maxForwards = headers.first(where: { $0.0.caseInsensitiveEquals("max-forwards") }),
            maxForwards.1.trimming(" \t") == "0"
        {
            return .failure(.answeredByProxy())
        }
        return .success(host)
    }
}

extension Problem {
    /// TRACE and TRACK.
    public static func methodNotForwarded(_ method: String) -> Problem {
        Problem(
            status: 405, code: "method_not_allowed", title: "\(method) is not supported",
            detail:
                "The proxy does not forward \(method): the upstream would echo the request, with the injected Authorization, back to the caller.",
            headers: [("Allow", RequestScreen.forwardedMethods)])
    }

    /// `Host` names neither this proxy nor a named credential (e.g. a DNS-rebound browser).
    public static func misdirectedRequest(_ host: String) -> Problem {
        Problem(
            status: 421, code: "misdirected_request", title: "Misdirected request",
            detail:
                "Host '\(CallerText.printable(host))' is not a name of this proxy. Use a loopback address, the listen address, a name in allowed_hosts, or a named credential's alias."
        )
    }

    /// `OPTIONS` with `Max-Forwards: 0` (RFC 9110 §7.6.2): the proxy is the final recipient.
    public static func answeredByProxy() -> Problem {
        Problem(
            status: 200, code: "answered_by_proxy", title: "Answered by the proxy",
            detail: "Max-Forwards is 0: the proxy answers this OPTIONS request itself and forwards nothing.",
            headers: [("Allow", RequestScreen.forwardedMethods)])
    }
}
