import Foundation

/// A value during evaluation. Text and bytes are kept apart so digests and MACs can be
/// encoded without passing through text; bytes become text only when they are valid UTF-8.
enum FormulaValue: Sendable, Equatable {
    case text(String)
    case number(Decimal)
    case bool(Bool)
    case bytes([UInt8])

    /// The largest intermediate value (UTF-8 bytes or raw bytes) evaluation may build, so that
    /// nested functions cannot use unbounded memory.
    static let maxIntermediateBytes = Formula.maxIntermediateBytes

    static let bytesNotText = FormulaEvaluationError(
        "binary value is not valid UTF-8 text; encode it with BASE64ENCODE or HEX")

    /// The value as text: numbers print without a trailing `.0`, booleans as `true`/`false`.
    func asText() throws(FormulaEvaluationError) -> String {
        switch self {
        case .text(let string): return string
        case .number(let number): return number.formulaText
        case .bool(let bool): return bool ? "true" : "false"
        case .bytes(let bytes):
            guard let string = String(validating: bytes, as: UTF8.self) else {
                throw Self.bytesNotText
            }
            return string
        }
    }

    /// The value as bytes: text as its UTF-8 encoding.
    func asBytes() throws(FormulaEvaluationError) -> [UInt8] {
        if case .bytes(let bytes) = self { return bytes }
        return Array(try asText().utf8)
    }

    /// Size in bytes, for the intermediate bound.
    var byteCount: Int {
        switch self {
        case .text(let string): string.utf8.count
        case .bytes(let bytes): bytes.count
        case .number, .bool: 0
        }
    }

    /// Blank means empty text or empty bytes; numbers and booleans are never blank.
    var isBlank: Bool {
        switch self {
        case .text(let string): string.isEmpty
        case .bytes(let bytes): bytes.isEmpty
        case .number, .bool: false
        }
    }
}

extension Decimal {
    /// Integers print without a fraction; decimals without trailing zeros.
    var formulaText: String { description }
}
