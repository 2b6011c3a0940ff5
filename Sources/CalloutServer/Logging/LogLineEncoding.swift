import CalloutCore

/// One value in a log line. Numbers and booleans are written bare in JSON (`"status":200`).
enum LogValue {
    case string(String)
    case int(Int)
    /// A duration written in milliseconds with two decimals (`30.71`).
    case milliseconds(Duration)
    case bool(Bool)
    /// 4 or 16 address bytes, written as text (`127.0.0.1`, `::1`).
    case address([UInt8])
}

/// Byte-level writers for the two line formats: JSON objects and human `key=value` text.
/// Control characters are always escaped, so a value can never start a new line.
enum LogLineEncoding {
    // MARK: - JSON

    /// Appends `"text"` with JSON escapes, also for U+2028, U+2029 and DEL.
    ///
    /// The one hand-written JSON escaper: every other JSON goes through `JSONEncoder`
    /// (`JSONValue`), but log lines are written per request into a reused byte buffer, and a
    /// `JSONEncoder` per line would cost an allocation-heavy round trip on the hot path.
    /// `LogLineTests` checks it against Foundation's reading.
    static func appendJSONString(_ text: some StringProtocol, to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "\""))
        appendEscaped(text, to: &buffer)
        buffer.append(UInt8(ascii: "\""))
    }

    private static func appendEscaped(_ text: some StringProtocol, to buffer: inout [UInt8]) {
        let utf8 = text.utf8
        // Most values need no escape: copy them whole.
        if !utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C || $0 == 0x7F || $0 == 0xE2 }) {
            buffer.append(contentsOf: utf8)
            return
        }
        var index = utf8.startIndex
        while index != utf8.endIndex {
            let byte = utf8[index]
            switch byte {
            case UInt8(ascii: "\""): buffer.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): buffer.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: buffer.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: buffer.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: buffer.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x00...0x1F, 0x7F: appendUnicodeEscape(UInt16(byte), to: &buffer)
            case 0xE2:
                // U+2028 / U+2029 (E2 80 A8 / E2 80 A9) end lines in some JavaScript readers.
                let next = utf8.index(after: index)
                if next != utf8.endIndex, utf8[next] == 0x80 {
                    let third = utf8.index(after: next)
                    if third != utf8.endIndex, utf8[third] == 0xA8 || utf8[third] == 0xA9 {
                        appendUnicodeEscape(utf8[third] == 0xA8 ? 0x2028 : 0x2029, to: &buffer)
                        index = utf8.index(after: third)
                        continue
                    }
                }
                buffer.append(byte)
            default: buffer.append(byte)
            }
            index = utf8.index(after: index)
        }
    }

    private static func appendUnicodeEscape(_ value: UInt16, to buffer: inout [UInt8]) {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        buffer.append(contentsOf: [0x5C, UInt8(ascii: "u")])
        for shift in stride(from: 12, through: 0, by: -4) { buffer.append(hex[Int(value >> UInt16(shift)) & 0xF]) }
    }

    static func appendJSON(_ value: LogValue, to buffer: inout [UInt8]) {
        switch value {
        case .string(let s): appendJSONString(s, to: &buffer)
        case .int(let n): appendInt(n, to: &buffer)
        case .milliseconds(let d): appendMilliseconds(d, to: &buffer)
        case .bool(let b): buffer.append(contentsOf: (b ? "true" : "false").utf8)
        case .address(let bytes):
            buffer.append(UInt8(ascii: "\""))
            appendAddress(bytes, to: &buffer)
            buffer.append(UInt8(ascii: "\""))
        }
    }

    /// `,"key":value`.
    static func appendJSONMember(_ key: StaticString, _ value: LogValue, to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: ","))
        buffer.append(UInt8(ascii: "\""))
        appendStatic(key, to: &buffer)
        buffer.append(UInt8(ascii: "\""))
        buffer.append(UInt8(ascii: ":"))
        appendJSON(value, to: &buffer)
    }

    // MARK: - Human

    /// A value as human text: bare when it is a plain word, else JSON-quoted.
    static func appendHuman(_ value: LogValue, to buffer: inout [UInt8]) {
        switch value {
        case .string(let s): appendHumanString(s, to: &buffer)
        case .address(let bytes): appendAddress(bytes, to: &buffer)
        case .int, .milliseconds, .bool: appendJSON(value, to: &buffer)
        }
    }

    static func appendHumanString(_ text: some StringProtocol, to buffer: inout [UInt8]) {
        let plain =
            !text.isEmpty
            && text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "=") }
        if plain {
            buffer.append(contentsOf: text.utf8)
        } else {
            appendJSONString(text, to: &buffer)
        }
    }

    /// Free text (a message): as it is, with control characters escaped as in JSON.
    static func appendHumanMessage(_ text: String, to buffer: inout [UInt8]) {
        if text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) {
            appendEscaped(text, to: &buffer)
        } else {
            buffer.append(contentsOf: text.utf8)
        }
    }

    /// ` key=value`.
    static func appendHumanMember(_ key: StaticString, _ value: LogValue, to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: " "))
        appendStatic(key, to: &buffer)
        buffer.append(UInt8(ascii: "="))
        appendHuman(value, to: &buffer)
    }

    // MARK: - Numbers, addresses

    static func appendInt(_ n: Int, to buffer: inout [UInt8]) {
        if n < 0 {
            buffer.append(UInt8(ascii: "-"))
            if n == Int.min {
                buffer.append(contentsOf: String(n).utf8.dropFirst())
                return
            }
        }
        LogTimestamp.appendDigits(abs(n), width: 1, to: &buffer)
    }

    /// Milliseconds with two decimals, rounded to the nearest hundredth (`30.71`).
    static func appendMilliseconds(_ d: Duration, to buffer: inout [UInt8]) {
        let hundredths = hundredthsOfMilliseconds(d)
        appendInt(Int(hundredths / 100), to: &buffer)
        buffer.append(UInt8(ascii: "."))
        LogTimestamp.appendDigits(Int(abs(hundredths) % 100), width: 2, to: &buffer)
    }

    /// A duration in hundredths of milliseconds, rounded to the nearest.
    static func hundredthsOfMilliseconds(_ d: Duration) -> Int64 {
        let (seconds, attoseconds) = d.components
        return seconds * 100_000 + (attoseconds + 5_000_000_000_000) / 10_000_000_000_000
    }

    static func appendAddress(_ bytes: [UInt8], to buffer: inout [UInt8]) {
        guard bytes.count == 4 else {
            buffer.append(contentsOf: IPAddress.format(bytes).utf8)
            return
        }
        for (i, byte) in bytes.enumerated() {
            if i > 0 { buffer.append(UInt8(ascii: ".")) }
            LogTimestamp.appendDigits(Int(byte), width: 1, to: &buffer)
        }
    }

    static func appendStatic(_ text: StaticString, to buffer: inout [UInt8]) {
        text.withUTF8Buffer { buffer.append(contentsOf: $0) }
    }
}
