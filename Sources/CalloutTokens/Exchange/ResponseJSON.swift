#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A decoded JSON value, for token endpoint answers whose member types vary (`expires_in` as
/// a number or a string).
package enum ResponseJSON: Decodable, Sendable, Equatable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case null
    case array([ResponseJSON])
    case object([String: ResponseJSON])

    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([ResponseJSON].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: ResponseJSON].self))
        }
    }

    /// Parses a JSON object; nil for anything else.
    package static func object(from bytes: some Collection<UInt8>) -> [String: ResponseJSON]? {
        guard case .object(let members)? = try? JSONDecoder().decode(ResponseJSON.self, from: Data(bytes))
        else {
            return nil
        }
        return members
    }

    package var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// A string as is, or a number / bool written out (for recording claims).
    package var textValue: String {
        switch self {
        case .string(let value): value
        case .number(let value):
            value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        case .bool(let value): String(value)
        case .null: "null"
        case .array(let values): "[" + values.map(\.textValue).joined(separator: ",") + "]"
        case .object: "{…}"
        }
    }
}

/// Reads a JWT's payload without checking its signature (used only to learn an access token's
/// `exp` when the endpoint sent no `expires_in`, and by development tools).
package enum JWTPayload {
    package static func claims(of jwt: String) -> [String: ResponseJSON]? {
        let segments = jwt.split(separator: ".", omittingEmptySubsequences: false)
        guard segments.count == 3, let payload = Base64URL.decode(segments[1]) else { return nil }
        return ResponseJSON.object(from: payload)
    }
}
