/// `{!...}` blocks inside a request body (named credentials with `allow_formulas_in_body`).
///
/// A body may be far longer than a formula's source limit, so the body is scanned for blocks and
/// each block is parsed and evaluated on its own; the text between blocks is kept byte for byte.
/// A block ends at the first `}` outside a quoted string. `\{!` stays a literal `{!`.
public enum BodyTemplate {
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// 1-based byte offset of the block in the body.
        public let offset: Int
        public let message: String
        public var description: String { "body offset \(offset): \(message)" }
    }

    /// Whether `body` has any block to evaluate.
    public static func containsBlocks(_ body: [UInt8]) -> Bool {
        var i = 0
        while i + 1 < body.count {
            if body[i] == UInt8(ascii: "{") && body[i + 1] == UInt8(ascii: "!") { return true }
            i += 1
        }
        return false
    }

    /// Evaluates every block of `body`. Bodies must be UTF-8 text.
    public static func render(_ body: [UInt8], context: FormulaContext) -> Result<[UInt8], Failure> {
        var out: [UInt8] = []
        out.reserveCapacity(body.count)
        var i = 0
        while i < body.count {
            let b = body[i]
            if b == UInt8(ascii: "\\"), i + 2 < body.count, body[i + 1] == UInt8(ascii: "{"),
                body[i + 2] == UInt8(ascii: "!")
            {
                out.append(contentsOf: [UInt8(ascii: "{"), UInt8(ascii: "!")])
                i += 3
                continue
            }
            guard b == UInt8(ascii: "{"), i + 1 < body.count, body[i + 1] == UInt8(ascii: "!") else {
                out.append(b)
                i += 1
                continue
            }
            guard let end = blockEnd(body, from: i + 2) else {
                return .failure(Failure(offset: i + 1, message: "unterminated {! block"))
            }
            guard let source = String(validating: body[i...end], as: UTF8.self) else {
                return .failure(Failure(offset: i + 1, message: "block is not UTF-8 text"))
            }
            do {
                let value = try Formula(parsing: source).evaluate(in: context)
                out.append(contentsOf: value.utf8)
            } catch let e as FormulaParseError {
                return .failure(Failure(offset: i + 1, message: e.description))
            } catch {
                return .failure(Failure(offset: i + 1, message: "\(error)"))
            }
            i = end + 1
        }
        return .success(out)
    }

    /// Index of the `}` closing a block whose expression starts at `start`.
    private static func blockEnd(_ body: [UInt8], from start: Int) -> Int? {
        var quote: UInt8? = nil
        var i = start
        while i < body.count {
            let c = body[i]
            if let q = quote {
                if c == UInt8(ascii: "\\") {
                    i += 2
                    continue
                }
                if c == q { quote = nil }
            } else if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") {
                quote = c
            } else if c == UInt8(ascii: "}") {
                return i
            }
            i += 1
        }
        return nil
    }

    /// Content types whose bodies are text a template may live in.
    public static func isTextual(contentType: String?) -> Bool {
        guard let type = contentType?.split(separator: ";").first?.trimming(" \t").lowercased() else { return false }
        return type.hasPrefix("text/") || type == "application/json" || type == "application/xml"
            || type == "application/x-www-form-urlencoded" || type.hasSuffix("+json") || type.hasSuffix("+xml")
    }
}
