/// An IPv4 or IPv6 network, e.g. `127.0.0.1/32` or `fd00::/8`, matched against peer addresses.
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    /// Network address bytes (4 or 16), host bits cleared.
    public let network: [UInt8]
    public let prefixLength: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let bytes = IPAddress.parse(String(parts[0])) else { return nil }
        let maxBits = bytes.count * 8
        let bits: Int
        if parts.count == 2 {
            guard let b = Int(parts[1]), (0...maxBits).contains(b) else { return nil }
            bits = b
        } else {
            bits = maxBits
        }
        self.prefixLength = bits
        self.network = CIDR.mask(bytes, bits)
    }

    /// True when `address` (4 or 16 bytes) is inside this network. IPv4-mapped IPv6 addresses
    /// (`::ffff:a.b.c.d`) match IPv4 networks.
    public func contains(_ address: [UInt8]) -> Bool {
        // Compared in place, byte by byte under the mask: this runs for every request.
        var offset = 0
        if address.count == 16, network.count == 4, address[0..<10].allSatisfy({ $0 == 0 }),
            address[10] == 0xFF, address[11] == 0xFF
        {
            offset = 12
        }
        guard address.count - offset == network.count else { return false }
        for i in 0..<network.count where address[offset + i] & CIDR.maskByte(i, prefixLength) != network[i] {
            return false
        }
        return true
    }

    public func contains(_ address: String) -> Bool {
        guard let bytes = IPAddress.parse(address) else { return false }
        return contains(bytes)
    }

    public var description: String {
        "\(IPAddress.format(network))/\(prefixLength)"
    }

    private static func mask(_ bytes: [UInt8], _ bits: Int) -> [UInt8] {
        var out = bytes
        for i in 0..<out.count { out[i] &= maskByte(i, bits) }
        return out
    }

    /// The mask of byte `i` for a prefix of `bits` bits.
    private static func maskByte(_ i: Int, _ bits: Int) -> UInt8 {
        let keep = max(0, min(8, bits - i * 8))
        return keep == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - keep))
    }
}

/// Textual IP address parsing and formatting without sockets.
public enum IPAddress {
    /// 4 bytes for dotted IPv4, 16 for IPv6 (with `::` compression and an optional zone dropped).
    public static func parse(_ text: String) -> [UInt8]? {
        if let v4 = parseV4(Substring(text)) { return v4 }
        return parseV6(text)
    }

    static func parseV4(_ text: Substring) -> [UInt8]? {
        // On the UTF-8 bytes, without splitting: four parts of one to three ASCII digits, at most
        // 255, no leading zero (no octal ambiguity). A non-ASCII byte is never a digit or a dot,
        // so this accepts what a character-wise reading accepts.
        var out: [UInt8] = []
        out.reserveCapacity(4)
        var value = 0
        var digits = 0
        var leadingZero = false
        for byte in text.utf8 {
            if byte == UInt8(ascii: ".") {
                guard digits > 0, out.count < 3 else { return nil }
                out.append(UInt8(value))
                value = 0
                digits = 0
                continue
            }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 3 else { return nil }
            if digits == 0 { leadingZero = byte == UInt8(ascii: "0") } else if leadingZero { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
            guard value <= 255 else { return nil }
            digits += 1
        }
        guard digits > 0, out.count == 3 else { return nil }
        out.append(UInt8(value))
        return out
    }

    static func parseV6(_ raw: String) -> [UInt8]? {
        var text = Substring(raw)
        if let pct = text.firstIndex(of: "%") { text = text[..<pct] }
        guard text.contains(":") else { return nil }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ s: String) -> [UInt8]? {
            if s.isEmpty { return [] }
            var out: [UInt8] = []
            let items = s.split(separator: ":", omittingEmptySubsequences: false)
            for (i, item) in items.enumerated() {
                if i == items.count - 1, item.contains(".") {
                    guard let v4 = parseV4(item) else { return nil }
                    out += v4
                    continue
                }
                guard !item.isEmpty, item.count <= 4, let v = UInt16(item, radix: 16) else {
                    return nil
                }
                out += [UInt8(v >> 8), UInt8(v & 0xFF)]
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        if halves.count == 1 { return head.count == 16 ? head : nil }
        guard let tail = groups(halves[1]), head.count + tail.count < 16 else { return nil }
        return head + Array(repeating: 0, count: 16 - head.count - tail.count) + tail
    }

    public static func format(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        var groups: [String] = []
        for i in stride(from: 0, to: bytes.count, by: 2) {
            groups.append(String(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]), radix: 16))
        }
        // Compress the longest run of two or more zero groups (RFC 5952).
        var best = (start: -1, length: 0)
        var i = 0
        while i < groups.count {
            guard groups[i] == "0" else {
                i += 1
                continue
            }
            var j = i
            while j < groups.count, groups[j] == "0" { j += 1 }
            if j - i > best.length { best = (i, j - i) }
            i = j
        }
        guard best.length >= 2 else { return groups.joined(separator: ":") }
        let head = groups[..<best.start].joined(separator: ":")
        let tail = groups[(best.start + best.length)...].joined(separator: ":")
        return head + "::" + tail
    }
}
