import Crypto
import Foundation

/// The bodies of the language's functions. IF, BLANKVALUE, AND and OR evaluate only the
/// arguments they need.
extension FormulaEvaluator {
    func call(_ function: FormulaFunction, _ args: [FormulaNode]) throws(FormulaEvaluationError)
        -> FormulaValue
    {
        switch function {
        case .if:
            return try evaluate(try condition(args[0], function) ? args[1] : args[2])
        case .blankValue:
            let value = try evaluate(args[0])
            return value.isBlank ? try evaluate(args[1]) : value
        case .isBlank:
            return .bool(try evaluate(args[0]).isBlank)
        case .not:
            return .bool(!(try condition(args[0], function)))
        case .and:
            for arg in args where !(try condition(arg, function)) { return .bool(false) }
            return .bool(true)
        case .or:
            for arg in args where try condition(arg, function) { return .bool(true) }
            return .bool(false)
        case .upper:
            return .text(try text(args[0]).uppercased())
        case .lower:
            return .text(try text(args[0]).lowercased())
        case .trim:
            return .text(try text(args[0]).trimmingCharacters(in: .whitespacesAndNewlines))
        case .left:
            let string = try text(args[0])
            return .text(String(string.prefix(try count(args[1], function))))
        case .right:
            let string = try text(args[0])
            return .text(String(string.suffix(try count(args[1], function))))
        case .len:
            return .number(Decimal(try text(args[0]).count))
        case .substitute:
            return .text(try substitute(try text(args[0]), try text(args[1]), try text(args[2])))
        case .contains:
            let string = try text(args[0])
            let part = try text(args[1])
            return .bool(part.isEmpty || string.contains(part))
        case .begins:
            return .bool(try text(args[0]).hasPrefix(try text(args[1])))
        case .text:
            return .text(try text(args[0]))
        case .urlEncode:
            return .text(Self.percentEncode(try text(args[0])))
        case .base64Encode:
            return .text(Data(try evaluate(args[0]).asBytes()).base64EncodedString())
        case .base64Decode:
            return .text(try Self.base64Decode(try text(args[0])))
        case .blob:
            return .bytes(try evaluate(args[0]).asBytes())
        case .hex:
            return .text(Self.hex(try evaluate(args[0]).asBytes()))
        case .hash:
            let algorithm = try digestAlgorithm(args[0], function)
            return .bytes(Self.digest(algorithm, try evaluate(args[1]).asBytes()))
        case .hmac:
            let algorithm = try digestAlgorithm(args[0], function)
            let data = try evaluate(args[1]).asBytes()
            let key = try evaluate(args[2]).asBytes()
            return .bytes(Self.mac(algorithm, data, key: key))
        case .nowEpoch:
            return .number(Decimal(Int(context.now())))
        case .uuid:
            return .text(context.uuid().uuidString.lowercased())
        }
    }

    /// A boolean argument: TRUE/FALSE, a comparison, or the text `true` / `false`.
    private func condition(_ node: FormulaNode, _ function: FormulaFunction)
        throws(FormulaEvaluationError) -> Bool
    {
        switch try evaluate(node) {
        case .bool(let bool): return bool
        case .text(let string) where string.lowercased() == "true": return true
        case .text(let string) where string.lowercased() == "false": return false
        default:
            throw FormulaEvaluationError(
                "\(function.rawValue) needs a true/false value such as a comparison, ISBLANK or CONTAINS")
        }
    }

    /// A character count for LEFT / RIGHT: a whole number; negative counts mean zero.
    private func count(_ node: FormulaNode, _ function: FormulaFunction)
        throws(FormulaEvaluationError) -> Int
    {
        let digits: String
        switch try evaluate(node) {
        case .number(let number): digits = number.formulaText
        case .text(let string): digits = string.trimmingCharacters(in: .whitespaces)
        default: digits = ""
        }
        if let count = Int(digits) { return max(0, count) }
        let magnitude = digits.hasPrefix("-") ? digits.dropFirst() : Substring(digits)
        guard !magnitude.isEmpty, magnitude.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw FormulaEvaluationError("\(function.rawValue) needs a whole number of characters")
        }
        return digits.hasPrefix("-") ? 0 : Int.max
    }

    private func digestAlgorithm(_ node: FormulaNode, _ function: FormulaFunction)
        throws(FormulaEvaluationError)
        -> DigestAlgorithm
    {
        guard case .text(let name) = try evaluate(node),
            let algorithm = DigestAlgorithm(name: name, for: function)
        else {
            throw FormulaEvaluationError(DigestAlgorithm.refusal(for: function))
        }
        return algorithm
    }

    /// Replaces every occurrence, refusing before building a result over the intermediate bound.
    private func substitute(_ string: String, _ old: String, _ new: String)
        throws(FormulaEvaluationError) -> String
    {
        guard !old.isEmpty else { return string }
        let ranges = string.ranges(of: old)
        guard !ranges.isEmpty else { return string }
        let growth = ranges.count * (new.utf8.count - old.utf8.count)
        if string.utf8.count + growth > FormulaValue.maxIntermediateBytes {
            throw FormulaEvaluationError(
                "SUBSTITUTE result is larger than \(FormulaValue.maxIntermediateBytes) bytes")
        }
        var result = ""
        result.reserveCapacity(string.utf8.count + max(0, growth))
        var start = string.startIndex
        for range in ranges {
            result += string[start..<range.lowerBound]
            result += new
            start = range.upperBound
        }
        result += string[start...]
        return result
    }

    /// RFC 3986: unreserved characters stay, every other UTF-8 byte becomes `%XX`.
    static func percentEncode(_ string: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(string.utf8.count)
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                UInt8(ascii: "_"), UInt8(ascii: "~"):
                bytes.append(byte)
            default:
                bytes.append(UInt8(ascii: "%"))
                bytes.append(upperHexDigits[Int(byte >> 4)])
                bytes.append(upperHexDigits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func base64Decode(_ string: String) throws(FormulaEvaluationError) -> String {
        var padded = string.trimmingCharacters(in: .whitespaces)
        if padded.utf8.count % 4 != 0 {
            padded += String(repeating: "=", count: 4 - padded.utf8.count % 4)
        }
        guard let data = Data(base64Encoded: padded) else {
            throw FormulaEvaluationError("BASE64DECODE input is not valid base64")
        }
        guard let decoded = String(validating: data, as: UTF8.self) else {
            throw FormulaEvaluationError("BASE64DECODE result is not valid UTF-8 text")
        }
        return decoded
    }

    static func hex(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(lowerHexDigits[Int(byte >> 4)])
            out.append(lowerHexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func digest(_ algorithm: DigestAlgorithm, _ data: [UInt8]) -> [UInt8] {
        switch algorithm {
        case .sha1: Array(Insecure.SHA1.hash(data: data))
        case .sha256: Array(SHA256.hash(data: data))
        case .sha512: Array(SHA512.hash(data: data))
        }
    }

    static func mac(_ algorithm: DigestAlgorithm, _ data: [UInt8], key: [UInt8]) -> [UInt8] {
        let key = SymmetricKey(data: key)
        switch algorithm {
        case .sha1: return Array(HMAC<Insecure.SHA1>.authenticationCode(for: data, using: key))
        case .sha256: return Array(HMAC<SHA256>.authenticationCode(for: data, using: key))
        case .sha512: return Array(HMAC<SHA512>.authenticationCode(for: data, using: key))
        }
    }

    private static let upperHexDigits = Array("0123456789ABCDEF".utf8)
    private static let lowerHexDigits = Array("0123456789abcdef".utf8)
}
