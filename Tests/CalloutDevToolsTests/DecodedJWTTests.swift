import CalloutCore
import CalloutTokens
import Testing

@testable import CalloutDevTools

@Suite("Decoded JWT")
struct DecodedJWTTests {
    @Test func decodeRejectsMalformedInput() {
        for bad in ["", "a.b", "a.b.c.d", "!!.e30.", "e30.e30.@@", "W10.e30.", "e30.eyJhIjoxLCJhIjoyfQ."] {
            #expect(throws: AssertionVerificationError.self) { try DecodedJWT(bad) }
        }
        // "{}" header and claims, empty signature: decodes.
        #expect(throws: Never.self) { try DecodedJWT("e30.e30.") }
    }

    @Test func jsonRoundTrip() throws {
        let text = #"{"a":[1,-2,3.5,true,false,null,"\u00e9\ud83d\ude00"],"b":{"c":"d"}}"#
        let value = try JSONParser.parse(Array(text.utf8))
        guard case .object(let object) = value else {
            Issue.record("not an object")
            return
        }
        #expect(object.keys.sorted() == ["a", "b"])
        #expect(
            object["a"]
                == .array([.integer(1), .integer(-2), .number(3.5), .bool(true), .bool(false), .null, .string("é😀")]))
        #expect(value.jsonText == #"{"a":[1,-2,3.5,true,false,null,"é😀"],"b":{"c":"d"}}"#)
        #expect(value.prettyJSONText.contains("\n  \"b\" : {\n    \"c\" : \"d\"\n  }"))
    }
}
