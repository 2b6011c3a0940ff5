#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A JSON value: identity provider answers and JWT segments read, admin answers, problem
/// bodies and JWT segments written. Reading and writing go through Foundation's `JSONDecoder`
/// and `JSONEncoder`; written objects have sorted keys, so the text is stable.
///
/// Numbers without fraction or exponent that fit `Int64` read as `integer`, others as `number`.
public enum JSONValue: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value):
            if value.isFinite { try container.encode(value) } else { try container.encodeNil() }
        case .string(let value): try container.encode(value)
        case .array(let values): try container.encode(values)
        case .object(let members): try container.encode(members)
        }
    }

    /// Parses JSON text; nil when it is not JSON.
    public static func parse(_ bytes: some Collection<UInt8>) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    /// Parses a JSON object; nil for anything else.
    public static func object(from bytes: some Collection<UInt8>) -> [String: JSONValue]? {
        guard case .object(let members)? = parse(bytes) else { return nil }
        return members
    }

    /// Compact JSON text, keys sorted, `/` unescaped.
    public var jsonText: String { Self.text(of: self, pretty: false) }

    /// Indented JSON text, keys sorted.
    public var prettyJSONText: String { Self.text(of: self, pretty: true) }

    /// `value` as JSON text through `JSONEncoder`, keys sorted.
    public static func text(of value: some Encodable, pretty: Bool = false) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting =
            pretty ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted] : [.sortedKeys, .withoutEscapingSlashes]
        // A JSONValue always encodes (non-finite numbers are written as null).
        guard let data = try? encoder.encode(value) else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }

    /// The string, if this is a JSON string.
    public var stringValue: String? {
        if case .string(let value) = self { value } else { nil }
    }

    /// The integer, if this is a JSON number without fraction that fits `Int64`.
    public var integerValue: Int64? {
        if case .integer(let value) = self { value } else { nil }
    }

    /// The number, if this is any JSON number.
    public var doubleValue: Double? {
        switch self {
        case .integer(let value): Double(value)
        case .number(let value): value
        default: nil
        }
    }

    /// A string as is, or a number / bool written out (for recording claims).
    public var textValue: String {
        switch self {
        case .string(let value): value
        case .integer(let value): String(value)
        case .number(let value):
            value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        case .bool(let value): String(value)
        case .null: "null"
        case .array(let values): "[" + values.map(\.textValue).joined(separator: ",") + "]"
        case .object: "{…}"
        }
    }
}
