/// Which `Host` values the proxy answers (data plane and admin listener).
///
/// A web page can make a browser send requests to the proxy: after DNS rebinding
/// (`attacker.example` resolving to 127.0.0.1) the browser treats the proxy as the page's own
/// origin and may read the answers, so the request carries `Host: attacker.example[:port]`.
/// Only names the proxy can legitimately be called by are accepted: a loopback name or address,
/// the listen address itself, any IP literal when listening on every address (a rebinding
/// attack needs a name), and on the data plane a configured alias (the host form).
public enum HostCheck {
    /// The host part of a `Host` value, lower-cased, without port, brackets or trailing dot;
    /// nil when the value is not a host name or address at all.
    public static func hostName(_ value: String) -> String? {
        switch asciiHostName(value) {
        case .some(let answer): return answer
        case .none: return characterHostName(value)
        }
    }

    /// ``hostName(_:)`` read character by character, for any value.
    static func characterHostName(_ value: String) -> String? {
        var text = Substring(value.trimming(" \t"))
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let rest = text[text.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && rest.dropFirst().allSatisfy(\.isNumber)) else { return nil }
            text = text[text.index(after: text.startIndex)..<close]
            return text.isEmpty ? nil : text.lowercased()
        }
        if let colon = text.lastIndex(of: ":") {
            guard text[text.index(after: colon)...].allSatisfy(\.isNumber) else { return nil }
            text = text[..<colon]
        }
        if text.hasSuffix(".") { text = text.dropLast() }
        // Byte checks: `contains` with a string argument is Foundation's search here.
        guard !text.isEmpty, !text.utf8.contains(UInt8(ascii: ":")), !text.utf8.contains(UInt8(ascii: "@")) else {
            return nil
        }
        return text.lowercased()
    }

    /// ``hostName(_:)`` on the bytes of a value of printable ASCII and tabs (every `Host` a
    /// client sends in practice), where each byte is one character; `nil` for any other value,
    /// which the character-wise reading answers.
    static func asciiHostName(_ value: String) -> String?? {
        var value = value
        return value.withUTF8 { bytes -> String?? in
            guard bytes.allSatisfy({ ($0 >= 0x20 && $0 < 0x7F) || $0 == 0x09 }) else { return nil }
            func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
            func lowercased(_ range: Range<Int>) -> String {
                String(unsafeUninitializedCapacity: range.count) { out in
                    for (i, b) in bytes[range].enumerated() { out[i] = b.asciiLowercased }
                    return range.count
                }
            }
            var start = 0
            var end = bytes.count
            while start < end, bytes[start] == 0x20 || bytes[start] == 0x09 { start += 1 }
            while end > start, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09 { end -= 1 }
            if start < end, bytes[start] == UInt8(ascii: "[") {
                guard let close = bytes[start..<end].firstIndex(of: UInt8(ascii: "]")) else { return .some(nil) }
                let rest = bytes[(close + 1)..<end]
                guard rest.isEmpty || (rest.first == UInt8(ascii: ":") && rest.dropFirst().allSatisfy(isDigit)) else {
                    return .some(nil)
                }
                return .some(close == start + 1 ? nil : lowercased((start + 1)..<close))
            }
            if let colon = bytes[start..<end].lastIndex(of: UInt8(ascii: ":")) {
                guard bytes[(colon + 1)..<end].allSatisfy(isDigit) else { return .some(nil) }
                end = colon
            }
            if end > start, bytes[end - 1] == UInt8(ascii: ".") { end -= 1 }
            guard end > start, !bytes[start..<end].contains(UInt8(ascii: ":")),
                !bytes[start..<end].contains(UInt8(ascii: "@"))
            else { return .some(nil) }
            return .some(lowercased(start..<end))
        }
    }

    /// Whether `host` (a `Host` header value) names this proxy. `isAlias` answers for the data
    /// plane's named credentials (the admin listener passes `{ _ in false }`).
    public static func accepts(
        _ host: String, listen: HostPort?, extraNames: [String] = [], isAlias: (String) -> Bool
    ) -> Bool {
        guard let name = hostName(host) else { return false }
        if isLoopbackName(name) { return true }
        let address = IPAddress.parse(name)
        if let address, isLoopbackAddress(address) { return true }
        if let listen {
            let listenHost = listen.host.lowercased()
            if listenHost == name { return true }
            if address != nil, let listenAddress = IPAddress.parse(listenHost) {
                if listenAddress.allSatisfy({ $0 == 0 }) { return true }
                if listenAddress == address { return true }
            }
        }
        if extraNames.contains(where: { $0.caseInsensitiveEquals(name) }) { return true }
        return address == nil && isAlias(name)
    }

    /// `localhost` and names under `.localhost` (RFC 6761 §6.3: always loopback).
    static func isLoopbackName(_ name: String) -> Bool {
        name == "localhost" || name.hasSuffix(".localhost")
    }

    /// 127.0.0.0/8, ::1 and IPv4-mapped 127.0.0.0/8.
    public static func isLoopbackAddress(_ bytes: [UInt8]) -> Bool {
        if bytes.count == 4 { return bytes[0] == 127 }
        guard bytes.count == 16 else { return false }
        if bytes[0..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return true }
        return bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF && bytes[12] == 127
    }
}
