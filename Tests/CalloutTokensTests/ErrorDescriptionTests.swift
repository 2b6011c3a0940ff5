import CalloutTokens
import Testing

/// An identity provider's `error_description` reaches callers in problem bodies: bounded, and
/// without anything shaped like a JWT or a token.
@Suite struct ErrorDescriptionTests {
    static let jwt =
        "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJhY21lLXJlYWRlciIsImV4cCI6MTcwMDAwMDAwMH0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    static let opaque = "8f14e45fceea167a5a36dedd4bea2543aZ9"

    @Test func tokensAndJWTsAreCutOut() {
        let text = "assertion \(Self.jwt) rejected; token \(Self.opaque) revoked"
        let cleaned = redactingTokenLikeText(text)
        #expect(cleaned == "assertion <redacted> rejected; token <redacted> revoked")
    }

    @Test(arguments: [
        "invalid_client_assertion_signature: the signature does not verify",
        "see https://idp.example.com/docs/errors/invalid-client-1234567890",
        "audience must be https://login.example/oauth2/v1/token",
        "client acme-reader is not allowed scope session:role:Finance.",
        "key id v1.2.3 unknown",
    ])
    func wordsPathsAndNamesStay(_ text: String) {
        #expect(redactingTokenLikeText(text) == text)
    }

    @Test func problemBodiesCarryTheShortRedactedText() {
        let parser = TokenResponseParser(limits: .init(maxErrorDescriptionLength: 40), secrets: ["ASSERTION-SECRET"])
        let body =
            #"{"error":"invalid_client","error_description":"bad \#(Self.jwt) and ASSERTION-SECRET and a very long tail of words"}"#
        do {
            _ = try parser.parse(status: 400, retryAfter: nil, body: Array(body.utf8), now: 0)
            Issue.record("a 400 answer parsed as a token")
        } catch {
            guard case .rejected(_, let code, let description?) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(code == "invalid_client")
            #expect(!description.contains("eyJ"))
            #expect(!description.contains("ASSERTION-SECRET"))
            #expect(description.count <= 41)
            #expect(description.hasPrefix("bad <redacted> and <redacted>"))
        }
    }
}
