/// Builds the header list sent upstream from the caller's headers.
public enum OutboundHeaders {
    /// Hop-by-hop and proxy-only headers (RFC 9110 §7.6.1), never forwarded.
    public static let hopByHop: Set<String> = [
        "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authorization", "proxy-authenticate", "proxy-connection",
    ]

    /// - Parameters:
    ///   - incoming: the caller's headers in order.
    ///   - isIdentityHeader: identity headers are consumed by the proxy, never forwarded.
    ///   - customHeaders: already evaluated, in the order to send: the named credential's, then the
    ///     external credential's, a name appearing once (the named credential's wins).
    ///   - authorization: `"<type> <token>"` when the proxy injects a token; replaces the caller's.
    ///   - host: the endpoint's authority.
    ///   - via: this hop's `Via` entry, e.g. `1.1 callout-proxy`.
    public static func build(
        incoming: [(String, String)], isIdentityHeader: (String) -> Bool, customHeaders: [(String, String)],
        authorization: String?, host: String, via: String
    ) -> [(String, String)] {
        var connectionTokens: Set<String> = []
        for (name, value) in incoming where name.caseInsensitiveEquals("connection") {
            for token in value.split(separator: ",") { connectionTokens.insert(token.trimming(" \t").lowercased()) }
        }
        let overridden = Set(customHeaders.map { $0.0.lowercased() })
        var out: [(String, String)] = [("Host", host)]
        var existingVia: [String] = []
        for (name, value) in incoming {
            let lower = name.lowercased()
            if hopByHop.contains(lower) || connectionTokens.contains(lower) || isIdentityHeader(name) { continue }
            if lower == "host" || lower == "content-length" || lower == "expect" || overridden.contains(lower) {
                continue
            }
            if lower == "authorization" && authorization != nil { continue }
            if lower == "via" {
                existingVia.append(value)
                continue
            }
            out.append((name, value))
        }
        if let authorization { out.append(("Authorization", authorization)) }
        out.append(contentsOf: customHeaders)
        out.append(("Via", (existingVia + [via]).joined(separator: ", ")))
        return out
    }

    /// Merges the named credential's and the external credential's custom headers: named first,
    /// each in sequence order; a named-credential header hides an external one of the same name.
    /// Each entry says whether it came from the named credential (whose formulas may read the
    /// token when it allows formulas in headers).
    public static func customHeaderOrder(named: [CustomHeaderConfig], external: [CustomHeaderConfig])
        -> [(header: CustomHeaderConfig, fromNamedCredential: Bool)]
    {
        let namedNames = Set(named.map { $0.name.lowercased() })
        return named.sorted { $0.sequenceNumber < $1.sequenceNumber }.map { ($0, true) }
            + external.filter { !namedNames.contains($0.name.lowercased()) }
            .sorted { $0.sequenceNumber < $1.sequenceNumber }.map { ($0, false) }
    }

    /// Response headers not to pass back to the caller.
    public static func isHopByHopResponseHeader(_ name: String, connectionTokens: Set<String>) -> Bool {
        let lower = name.lowercased()
        return hopByHop.contains(lower) || connectionTokens.contains(lower)
    }
}
