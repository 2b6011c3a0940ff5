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
        if isPlain(path) {
            // Nothing to decode, drop or resolve: the path is kept as it came.
            var out = base
            while out.utf8.last == UInt8(ascii: "/") { out.removeLast() }
            out += path
            if let query {
                out += "?"
                out += query
            }
            return .success(out)
        }
        return resolvingJoin(base: base, path: path, query: query)
    }

    /// The general join: decodes, drops and resolves segments. ``join(base:path:query:)`` gives
    /// the same result for every path (tests hold them equal) and skips this work for plain paths.
    static func resolvingJoin(base: String, path: String, query: String?) -> Result<String, Failure> {
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

    /// A path that the general join would return unchanged: empty, or `/` followed by segments
    /// of ASCII with no `%` (nothing to decode), no `\\` or NUL, no empty segment (`//`) and none
    /// that starts with `.` (no dot segment, with or without `;` parameters). Anything else takes
    /// the general path; this only saves its work on the common case.
    static func isPlain(_ path: String) -> Bool {
        var utf8 = path.utf8.makeIterator()
        guard let first = utf8.next() else { return true }
        guard first == UInt8(ascii: "/") else { return false }
        var previous = first
        while let b = utf8.next() {
            switch b {
            case UInt8(ascii: "%"), UInt8(ascii: "\\"), 0, 0x80...: return false
            case UInt8(ascii: "/") where previous == UInt8(ascii: "/"): return false
            case UInt8(ascii: ".") where previous == UInt8(ascii: "/"): return false
            default: break
            }
            previous = b
        }
        return true
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
