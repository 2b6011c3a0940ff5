/// Which named credential a request is addressed to, and the path + query to append to its URL.
///
/// Three forms are accepted (RFC 9112 §3.2: an absolute-form authority wins over `Host`):
/// 1. forward-proxy: `GET http://Acme/items?x=1`
/// 2. path form: `GET /callout:Acme/items?x=1` (also `/callout%3AAcme/...`)
/// 3. host form: `GET /items?x=1` with `Host: Acme`
public struct CalloutAddress: Sendable, Equatable {
    public var alias: String
    /// Starts with `/` (or is empty); still percent-encoded as received.
    public var path: String
    /// Without the `?`; nil when the request had none.
    public var query: String?

    public init(alias: String, path: String, query: String?) {
        self.alias = alias
        self.path = path
        self.query = query
    }
}

public enum AddressingError: Error, Sendable, Equatable {
    /// The target names no alias at all (e.g. `GET /` with `Host: proxy:8080`).
    case noAlias
    /// `CONNECT`: tokens cannot be injected into a tunnel.
    case connectNotSupported
    /// Unparseable request target.
    case malformedTarget(String)
    /// Absolute-form with a scheme other than http (e.g. `https://Acme/`, which a client only sends via CONNECT).
    case unsupportedScheme(String)
}

public enum CalloutAddressing {
    /// Parses the request target and `Host` header.
    public static func address(method: String, target: String, host: String?) -> Result<CalloutAddress, AddressingError>
    {
        if method == "CONNECT" { return .failure(.connectNotSupported) }
        if target.isEmpty { return .failure(.malformedTarget("empty request target")) }
        if target.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F || $0 == UInt8(ascii: "#") }) {
            return .failure(.malformedTarget("request target has invalid characters"))
        }
        // 1. Absolute form.
        if !target.hasPrefix("/") {
            guard let schemeEnd = target.range(of: "://") else {
                return .failure(.malformedTarget("request target must be origin-form or absolute-form"))
            }
            let scheme = target[..<schemeEnd.lowerBound].lowercased()
            guard scheme == "http" else { return .failure(.unsupportedScheme(scheme)) }
            let rest = target[schemeEnd.upperBound...]
            let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
            let authority = rest[..<authorityEnd]
            guard let alias = aliasFromAuthority(authority) else { return .failure(.noAlias) }
            let (path, query) = splitQuery(rest[authorityEnd...])
            return .success(
                CalloutAddress(
                    alias: alias, path: path.hasPrefix("/") || path.isEmpty ? path : "/" + path, query: query))
        }
        let (path, query) = splitQuery(Substring(target))
        // 2. Path form. The target is printable ASCII (checked above), so it is read on its bytes.
        for prefix in pathFormPrefixes where path.utf8.starts(with: prefix.utf8) {
            let afterPrefix = path.utf8.index(path.utf8.startIndex, offsetBy: prefix.utf8.count)
            let aliasEnd = path.utf8[afterPrefix...].firstIndex(of: UInt8(ascii: "/")) ?? path.endIndex
            let alias = String(path[afterPrefix..<aliasEnd])
            guard !alias.isEmpty else { return .failure(.noAlias) }
            return .success(CalloutAddress(alias: alias, path: String(path[aliasEnd...]), query: query))
        }
        // 3. Host form.
        guard let host, let alias = aliasFromAuthority(Substring(host)) else { return .failure(.noAlias) }
        return .success(CalloutAddress(alias: alias, path: path, query: query))
    }

    /// `Acme`, `Acme:80`, `acme.` → `Acme`; IP literals and empty hosts → nil.
    static func aliasFromAuthority(_ authority: Substring) -> String? {
        if authority.contains("@") || authority.hasPrefix("[") { return nil }
        var host = authority
        if let colon = host.lastIndex(of: ":") {
            guard host[host.index(after: colon)...].allSatisfy(\.isNumber) else { return nil }
            host = host[..<colon]
        }
        if host.hasSuffix(".") { host = host.dropLast() }
        guard !host.isEmpty, IPAddress.parse(String(host)) == nil else { return nil }
        return String(host)
    }

    private static let pathFormPrefixes = ["/callout:", "/callout%3A", "/callout%3a"]

    private static func splitQuery(_ s: Substring) -> (String, String?) {
        guard let q = s.utf8.firstIndex(of: UInt8(ascii: "?")) else { return (String(s), nil) }
        return (String(s[..<q]), String(s[s.utf8.index(after: q)...]))
    }
}
