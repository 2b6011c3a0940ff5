/// Builds the header list sent upstream from the caller's headers.
public enum OutboundHeaders {
    /// Hop-by-hop and proxy-only headers (RFC 9110 §7.6.1), never forwarded in either direction.
    /// `Proxy-Authentication-Info` (RFC 9110 §11.7.1) answers the proxy's own authentication.
    public static let hopByHop: Set<String> = [
        "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authorization", "proxy-authenticate", "proxy-authentication-info", "proxy-connection",
    ]

    /// - Parameters:
    ///   - incoming: the caller's headers in order.
    ///   - isIdentityHeader: identity headers are consumed by the proxy, never forwarded.
    ///   - customHeaders: already evaluated, in the order to send: the named credential's, then the
    ///     external credential's, a name appearing once (the named credential's wins).
    ///   - authorization: `"<type> <token>"` when the proxy injects a token; replaces the caller's.
    ///   - host: the endpoint's authority.
    ///   - via: this hop's `Via` entry, e.g. `1.1 callout-proxy`.
    ///   - decrementMaxForwards: for OPTIONS, `Max-Forwards` goes on one lower (RFC 9110 §7.6.2;
    ///     a request with 0 is answered by the proxy and never gets here).
    public static func build(
        incoming: [(String, String)], isIdentityHeader: (String) -> Bool, customHeaders: [(String, String)],
        authorization: String?, host: String, via: String, decrementMaxForwards: Bool = false
    ) -> [(String, String)] {
        // Per request: no lower-cased copies of names, and sets only when there is something in them.
        var connectionTokens: Set<String> = []
        for (name, value) in incoming where name.caseInsensitiveEquals("connection") {
            for token in value.split(separator: ",") { connectionTokens.insert(token.trimming(" \t").lowercased()) }
        }
        var out: [(String, String)] = [("Host", host)]
        out.reserveCapacity(incoming.count + customHeaders.count + 3)
        var existingVia: [String] = []
        for (name, value) in incoming {
            if isHopByHop(name) || isIdentityHeader(name) { continue }
            if !connectionTokens.isEmpty && connectionTokens.contains(name.lowercased()) { continue }
            if name.caseInsensitiveEquals("host") || name.caseInsensitiveEquals("content-length")
                || name.caseInsensitiveEquals("expect")
            {
                continue
            }
            if customHeaders.contains(where: { $0.0.caseInsensitiveEquals(name) }) { continue }
            if authorization != nil && name.caseInsensitiveEquals("authorization") { continue }
            if name.caseInsensitiveEquals("via") {
                existingVia.append(value)
                continue
            }
            if decrementMaxForwards, name.caseInsensitiveEquals("max-forwards"),
                let hops = Int(value.trimming(" \t")), hops > 0
            {
                out.append((name, String(hops - 1)))
                continue
            }
            out.append((name, value))
        }
        if let authorization { out.append(("Authorization", authorization)) }
        out.append(contentsOf: customHeaders)
        out.append(("Via", existingVia.isEmpty ? via : (existingVia + [via]).joined(separator: ", ")))
        return out
    }

    /// Whether `name` is one of ``hopByHop``, compared without allocating.
    public static func isHopByHop(_ name: String) -> Bool {
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
        isHopByHop(name) || (!connectionTokens.isEmpty && connectionTokens.contains(name.lowercased()))
    }
}
