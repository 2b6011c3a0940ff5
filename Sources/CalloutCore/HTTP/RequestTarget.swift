/// The request target an upstream request carries (RFC 9112 §3.2.1, origin-form).
public enum RequestTarget {
    /// The request target (path and query) of an absolute `https://host[:port]/path?query` URL.
    public static func of(_ url: String) -> String {
        let bytes = url.utf8
        // Past "scheme://", the first "/" or "?" starts the target.
        var slashes = 0
        var index = bytes.startIndex
        while index != bytes.endIndex, slashes < 2 {
            if bytes[index] == UInt8(ascii: "/") { slashes += 1 }
            index = bytes.index(after: index)
        }
        guard slashes == 2,
            let start = bytes[index...].firstIndex(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") })
        else { return "/" }
        let rest = Substring(url.utf8[start...])
        return rest.first == "?" ? "/" + rest : String(rest)
    }
}
