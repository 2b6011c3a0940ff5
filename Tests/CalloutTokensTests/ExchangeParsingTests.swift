import CalloutTokens
import Testing

@Suite struct ExchangeParsingTests {
    private let parser = TokenResponseParser(limits: .init(), secrets: ["ASSERTION-SECRET"])

    private func parse(_ body: String, status: Int = 200, retryAfter: String? = nil)
        throws(TokenExchangeError)
        -> TokenResponse
    {
        try parser.parse(status: status, retryAfter: retryAfter, body: Array(body.utf8), now: 1_000)
    }

    @Test func formEncoding() {
        #expect(FormURLEncoding.encode("a b&c=d/é~._-") == "a+b%26c%3Dd%2F%C3%A9~._-")
        let request = TokenRequest(
            identityProviderURL: "https://idp.example/token", clientId: "id 1", clientAssertion: "h.p.s",
            scope: "api read")
        #expect(
            request.formBody
                == "grant_type=client_credentials&client_id=id+1&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=h.p.s&scope=api+read"
        )
        #expect(!"\(request)".contains("h.p.s"))
    }

    @Test func successVariants() throws {
        let bearer = try parse(
            #"{"access_token":"abc","token_type":"bearer","expires_in":"120","scope":"api"}"#)
        #expect(
            bearer == TokenResponse(accessToken: "abc", tokenType: "Bearer", scope: "api", expiresIn: 120)
        )
        #expect(try parse(#"{"access_token":"a","token_type":"Bearer"}"#).expiresIn == 300)
        #expect(
            try parse(#"{"access_token":"a","token_type":"Bearer","expires_in":99999999}"#).expiresIn
                == 86_400)
        let jwt =
            "eyJhbGciOiJub25lIn0." + Base64URL.encode(Array(#"{"exp":1600}"#.utf8)) + ".sig"
        #expect(try parse(#"{"access_token":"\#(jwt)","token_type":"Bearer"}"#).expiresIn == 600)
    }

    @Test func refusals() {
        #expect(throws: TokenExchangeError.malformedResponse("expires_in must be positive")) {
            try parse(#"{"access_token":"a","token_type":"Bearer","expires_in":0}"#)
        }
        #expect(throws: TokenExchangeError.malformedResponse("expires_in must be positive")) {
            try parse(#"{"access_token":"a","token_type":"Bearer","expires_in":-5}"#)
        }
        #expect(throws: TokenExchangeError.unsupportedTokenType("DPoP")) {
            try parse(#"{"access_token":"a","token_type":"DPoP","expires_in":5}"#)
        }
        // A token goes into a header: CR, LF, NUL and non-ASCII are refused, not injected.
        for bad in [#"a\r\nX-Injected: 1"#, #"a\u0000b"#, "caf\u{E9}"] {
            #expect(
                throws: TokenExchangeError.malformedResponse("access_token has characters outside RFC 6749's VSCHAR")
            ) {
                try parse(#"{"access_token":"\#(bad)","token_type":"Bearer"}"#)
            }
        }
        #expect(throws: TokenExchangeError.malformedResponse("access_token missing or empty")) {
            try parse(#"{"access_token":"","token_type":"Bearer"}"#)
        }
        #expect(throws: TokenExchangeError.malformedResponse("body is not a JSON object")) {
            try parse("<html>")
        }
    }

    @Test func errorAnswers() {
        let long = String(repeating: "x", count: 400)
        do {
            _ = try parse(
                #"{"error":"invalid_client","error_description":"bad ASSERTION-SECRET\u0007 \#(long)"}"#,
                status: 401)
        } catch {
            guard case .rejected(401, "invalid_client", let description?) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(!description.contains("ASSERTION-SECRET"))
            #expect(!description.contains("\u{07}"))
            #expect(description.count <= 257)
            #expect(error.code == "token_exchange_failed")
            #expect(error.httpStatus == 502)
        }
        #expect(throws: TokenExchangeError.unavailable(status: 429, retryAfter: 2)) {
            try parse("{}", status: 429, retryAfter: "2")
        }
        // HTTP-date 1970-01-01 00:16:50 GMT = 1010 s, now = 1000.
        #expect(throws: TokenExchangeError.unavailable(status: 503, retryAfter: 10)) {
            try parse("", status: 503, retryAfter: "Thu, 01 Jan 1970 00:16:50 GMT")
        }
        #expect(throws: TokenExchangeError.unavailable(status: 500, retryAfter: nil)) {
            try parse("", status: 500)
        }
        #expect(TokenExchangeError.unavailable(status: 503, retryAfter: 1).httpStatus == 503)
        #expect(TokenExchangeError.timedOut("x").httpStatus == 504)
        #expect(TokenExchangeError.unreachable("x").code == "identity_provider_unavailable")
    }

    @Test func retryAfterForms() {
        #expect(RetryAfter.seconds(from: "120", now: 0) == 120)
        #expect(RetryAfter.seconds(from: "Sun, 06 Nov 1994 08:49:37 GMT", now: 784_111_770) == 7)
        #expect(RetryAfter.seconds(from: "Sun, 06 Nov 1994 08:49:37 GMT", now: 784_111_790) == 0)
        #expect(RetryAfter.seconds(from: "soon", now: 0) == nil)
    }
}
