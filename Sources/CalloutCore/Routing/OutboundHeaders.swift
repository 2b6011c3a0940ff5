/// Builds the header list sent upstream from the caller's headers.
public enum OutboundHeaders {
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
        let listed = HopByHop.connectionListed(in: incoming)
        // Room for Host, Authorization, Via and the framing header the caller adds: one allocation.
        var out: [(String, String)] = []
        out.reserveCapacity(incoming.count + customHeaders.count + 4)
        out.append(("Host", host))
        var existingVia: [String] = []
        for (name, value) in incoming {
            if HopByHop.drops(name, listed: listed) || isIdentityHeader(name) { continue }
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

    public static func customHeaderOrder(named: [CustomHeaderConfig], external: [CustomHeaderConfig])
        -> [(header: CustomHeaderConfig, fromNamedCredential: Bool)]
    {
        let namedNames = Set(named.map { $0.name.lowercased() })
        return named.sorted { $0.sequenceNumber < $1.sequenceNumber }.map { ($0, true) }
            + external.filter { !namedNames.contains($0.name.lowercased()) }
            .sorted { $0.sequenceNumber < $1.sequenceNumber }.map { ($0, false) }
    }
}
