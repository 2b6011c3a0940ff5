import CalloutCore
import Testing

@Suite("JSON values")
struct JSONValueTests {
    @Test func readsIntegersAsIntegersAndOtherNumbersAsNumbers() throws {
        let value = try #require(JSONValue.parse(Array(#"{"i":3600,"f":3.5,"s":"x","b":true,"n":null,"a":[1]}"#.utf8)))
        guard case .object(let members) = value else {
            Issue.record("not an object")
            return
        }
        #expect(members["i"] == .integer(3600))
        #expect(members["i"]?.doubleValue == 3600)
        #expect(members["f"] == .number(3.5))
        #expect(members["f"]?.integerValue == nil)
        #expect(members["s"]?.stringValue == "x")
        #expect(members["b"] == .bool(true))
        #expect(members["n"] == .null)
        #expect(members["a"] == .array([.integer(1)]))
        #expect(JSONValue.object(from: Array("[1]".utf8)) == nil)
        #expect(JSONValue.parse(Array("{".utf8)) == nil)
    }

    @Test func writesSortedKeysWithoutEscapingSlashes() {
        let value = JSONValue.object([
            "z": .string("https://a/b"), "a": .array([.integer(-2), .number(0.5), .null]),
            "m": .object(["y": .bool(false), "x": .string("quote \" line\n")]), "inf": .number(.infinity),
        ])
        #expect(
            value.jsonText
                == #"{"a":[-2,0.5,null],"inf":null,"m":{"x":"quote \" line\n","y":false},"z":"https://a/b"}"#)
        #expect(value.prettyJSONText.hasPrefix("{\n  \"a\" : [\n"))
    }

    @Test func problemBodiesAreSortedJSON() throws {
        let problem = Problem.badRequest("line \"one\"\nline two", alias: "Acme")
        #expect(problem.json.hasSuffix("}\n"))
        let read = try #require(JSONValue.object(from: Array(problem.json.utf8)))
        #expect(read["code"] == .string("bad_request"))
        #expect(read["status"] == .integer(400))
        #expect(read["detail"] == .string("line \"one\"\nline two"))
        #expect(read["named_credential"] == .string("Acme"))
        #expect(read["type"] == .string("https://callout-proxy.dev/problems/bad-request"))
        #expect(problem.json == JSONValue.object(read).jsonText + "\n")
    }
}
