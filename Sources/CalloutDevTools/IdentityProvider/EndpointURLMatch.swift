import CalloutCore
import Foundation

/// Whether an `aud` names the development identity provider's own token endpoint.
public enum EndpointURLMatch {
    /// True when `audience` is `endpoint`, also when one says `localhost` and the other the
    /// loopback address the provider listens on (same scheme, port and path).
    public static func same(_ audience: String, _ endpoint: String) -> Bool {
        if audience == endpoint { return true }
        guard let a = URLComponents(string: audience), let e = URLComponents(string: endpoint),
            a.scheme?.lowercased() == e.scheme?.lowercased(), a.port == e.port,
            (a.path.isEmpty ? "/" : a.path) == (e.path.isEmpty ? "/" : e.path), a.query == e.query,
            let aHost = a.host?.lowercased(), let eHost = e.host?.lowercased()
        else { return false }
        return aHost == eHost || (isLocalhost(aHost) && isLoopback(eHost)) || (isLocalhost(eHost) && isLoopback(aHost))
    }

    private static func isLocalhost(_ host: String) -> Bool { host == "localhost" }

    private static func isLoopback(_ host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return IPAddress.parse(bare).map(HostCheck.isLoopbackAddress) == true
    }
}
