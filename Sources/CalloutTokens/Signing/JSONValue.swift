import CalloutCore

/// A JSON value small enough to pass between tasks: the header and claims of a JWT.
///
/// Integers that fit `Int64` stay integers (`iat`, `exp`, `nbf`); other numbers are `Double`.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The string, if this is a JSON string.
    public var stringValue: String? {
        if case .string(let value) = self { value } else { nil }
    }

    /// The integer, if this is a JSON number without fraction or exponent that fits `Int64`.
    public var integerValue: Int64? {
        if case .integer(let value) = self { value } else { nil }
    }

    /// Compact JSON text, object members in their stored order.
    public var jsonText: String {
        var writer = JSONWriter(pretty: false)
        writer.write(self)
        return writer.output
    }

    /// Indented JSON text (two spaces), object members in their stored order.
    public var prettyJSONText: String {
        var writer = JSONWriter(pretty: true)
        writer.write(self)
        return writer.output
    }
}

/// A JSON object that keeps its members in order, so encoding is deterministic.
public struct JSONObject: Sendable, Hashable {
    public struct Member: Sendable, Hashable {
        public var name: String
        public var value: JSONValue

        public init(name: String, value: JSONValue) {
            self.name = name
            self.value = value
        }
    }

    /// Members in order; names are unique.
    public private(set) var members: [Member]

    public init() { self.members = [] }

    /// Member names in order.
    public var names: [String] { members.map(\.name) }

    /// The value of a member, or `nil`. Setting replaces in place or appends; setting `nil` removes.
    public subscript(name: String) -> JSONValue? {
        get { members.first(where: { $0.name == name })?.value }
        set {
            if let index = members.firstIndex(where: { $0.name == name }) {
                if let newValue {
                    members[index].value = newValue
                } else {
                    members.remove(at: index)
                }
            } else if let newValue {
                members.append(Member(name: name, value: newValue))
            }
        }
    }
}

/// Writes JSON text with RFC 8259 string escaping.
struct JSONWriter {
    let pretty: Bool
    private(set) var output = ""
    private var depth = 0

    init(pretty: Bool) { self.pretty = pretty }

    mutating func write(_ value: JSONValue) {
        switch value {
        case .null: output += "null"
        case .bool(let flag): output += flag ? "true" : "false"
        case .integer(let number): output += String(number)
        case .number(let number):
            output += number.isFinite ? "\(number)" : "null"
        case .string(let text): writeString(text)
        case .array(let items):
            writeContainer(open: "[", close: "]", count: items.count) { writer, index in
                writer.write(items[index])
            }
        case .object(let object):
            let members = object.members
            writeContainer(open: "{", close: "}", count: members.count) { writer, index in
                writer.writeString(members[index].name)
                writer.output += writer.pretty ? ": " : ":"
                writer.write(members[index].value)
            }
        }
    }

    private mutating func writeContainer(
        open: String, close: String, count: Int, _ element: (inout JSONWriter, Int) -> Void
    ) {
        output += open
        guard count > 0 else {
            output += close
            return
        }
        depth += 1
        for index in 0..<count {
            if index > 0 { output += "," }
            newline()
            element(&self, index)
        }
        depth -= 1
        newline()
        output += close
    }

    private mutating func newline() {
        guard pretty else { return }
        output += "\n" + String(repeating: "  ", count: depth)
    }

    mutating func writeString(_ text: String) {
        output += JSONString.quote(text)
    }
}
