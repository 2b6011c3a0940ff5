/// Joins a named credential's URL with a request path, never leaving the URL's base path.
public enum URLJoin {
    public enum Failure: Error, Sendable, Equatable {
        /// `..` segments (plain or percent-encoded, once or twice, with or without `;` parameters)
        /// that climb above the base path.
        case escapesBasePath
        /// Encoded slashes or backslashes or NULs that could be read as separators upstream.
        case ambiguousPath
    }

    /// `base` is the named credential URL (`https://api.example/v2`), `path` starts with `/` or is
    /// empty, `query` has no `?`. The result has exactly one `/` between base path and request path.
    public static func join(base: String, path: String, query: String?) -> Result<String, Failure> {
        var trimmedBase = Substring(base)
        while trimmedBase.hasSuffix("/") { trimmedBase = trimmedBase.dropLast() }
        var segments: [Substring] = []
        var depth = 0
        for raw in path.split(separator: "/", omittingEmptySubsequences: false).dropFirst(path.hasPrefix("/") ? 1 : 0) {
            let decoded = fullyDecoded(raw)
            if decoded.contains("/") || decoded.contains("\\") || decoded.contains("\0") {
                return .failure(.ambiguousPath)
            }
            // Tomcat, Jetty and Spring drop `;` parameters before resolving dot segments, so
            // `..;` and `..;x=1` climb like `..`.
            let withoutParameters = decoded.prefix { $0 != ";" }
            switch withoutParameters == "." || withoutParameters == ".." ? String(withoutParameters) : decoded {
            case ".", "": continue
            case "..":
                depth -= 1
                if depth < 0 { return .failure(.escapesBasePath) }
                segments.removeLast()
            default:
                depth += 1
                segments.append(raw)
            }
        }
        var out = String(trimmedBase)
        if !segments.isEmpty || path.hasSuffix("/") {
            out += "/" + segments.joined(separator: "/")
            if path.hasSuffix("/"), !segments.isEmpty, !out.hasSuffix("/") { out += "/" }
        }
        if let query { out += "?" + query }
        return .success(out)
    }

    /// Percent-decodes until stable (at most three rounds), so `%252e%252e` is seen as `..`.
    static func fullyDecoded(_ s: Substring) -> String {
        var current = String(s)
        for _ in 0..<3 {
            guard current.contains("%"), let next = percentDecode(current), next != current else { break }
            current = next
        }
        return current
    }

    static func percentDecode(_ s: String) -> String? {
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "%"), it.count >= 2,
                let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16)
            {
                bytes.append(v)
                it = it.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        return String(validating: bytes, as: UTF8.self) ?? String(decoding: bytes, as: UTF8.self)
    }
}
