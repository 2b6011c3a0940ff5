/// The one list of hop-by-hop headers (RFC 9110 §7.6.1), used in both directions: never forwarded
/// upstream, never passed back to the caller. `Proxy-Authentication-Info` (RFC 9110 §11.7.1)
/// answers a proxy's own authentication, so it ends here too.
public enum HopByHop {
    /// The names, lower-cased.
    public static let names: [String] = [
        "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authorization", "proxy-authenticate", "proxy-authentication-info", "proxy-connection",
    ]

    /// Whether `name` is one of ``names``, compared without allocating (called for every header
    /// of every request and response).
    @inlinable
    public static func contains(_ name: String) -> Bool {
        switch name.utf8.count {
        case 2: return name.caseInsensitiveEquals("te")
        case 7: return name.caseInsensitiveEquals("trailer") || name.caseInsensitiveEquals("upgrade")
        case 10: return name.caseInsensitiveEquals("connection") || name.caseInsensitiveEquals("keep-alive")
        case 16: return name.caseInsensitiveEquals("proxy-connection")
        case 17: return name.caseInsensitiveEquals("transfer-encoding")
        case 18: return name.caseInsensitiveEquals("proxy-authenticate")
        case 19: return name.caseInsensitiveEquals("proxy-authorization")
        case 25: return name.caseInsensitiveEquals("proxy-authentication-info")
        default: return false
        }
    }

    /// The header names a message's `Connection` headers list, which are hop-by-hop for that
    /// message (RFC 9110 §7.6.1), lower-cased; `close` and `keep-alive` are left out, being on
    /// the list anyway. Empty, and nothing allocated, when there is no such header.
    public static func connectionListed(in headers: some Sequence<(String, String)>) -> [String] {
        var listed: [String] = []
        for (name, value) in headers where name.caseInsensitiveEquals("connection") {
            appendConnectionListed(value, to: &listed)
        }
        return listed
    }

    /// What one `Connection` header value adds to ``connectionListed(in:)``; not generic, so a
    /// caller holding another header type pays no generic dispatch.
    public static func appendConnectionListed(_ value: String, to listed: inout [String]) {
        // The common values list nothing: no split, no trimming.
        if value.caseInsensitiveEquals("keep-alive") || value.caseInsensitiveEquals("close") { return }
        for token in value.split(separator: ",") {
            let token = token.trimming(" \t")
            if token.isEmpty || contains(token) || token.caseInsensitiveEquals("close") { continue }
            listed.append(token.lowercased())
        }
    }

    /// Whether a header is dropped at this hop: a hop-by-hop name, or one the message's
    /// `Connection` header listed (``connectionListed(in:)``).
    @inlinable
    public static func drops(_ name: String, listed: [String]) -> Bool {
        contains(name) || (!listed.isEmpty && listed.contains { name.caseInsensitiveEquals($0) })
    }
}
