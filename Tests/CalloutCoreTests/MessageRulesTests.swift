import CalloutCore
import Testing

@Suite struct MessageRulesTests {
    @Test func idempotentMethodsAreRetriedOnlyOnAStaleReusedConnection() {
        for method in ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"] {
            #expect(MessageRules.isIdempotent(method: method))
        }
        for method in ["POST", "PATCH", "CONNECT", "get"] { #expect(!MessageRules.isIdempotent(method: method)) }
        let retry = { (method: String, reused: Bool, replayable: Bool, retried: Bool, lost: Bool) in
            MessageRules.retriesOnFreshConnection(
                method: method, connectionWasReused: reused, bodyReplayable: replayable, alreadyRetried: retried,
                connectionLost: lost)
        }
        #expect(retry("GET", true, true, false, true))
        #expect(!retry("POST", true, true, false, true))
        #expect(!retry("GET", false, true, false, true))
        #expect(!retry("PUT", true, false, false, true))
        #expect(!retry("GET", true, true, true, true))
        #expect(!retry("GET", true, true, false, false))
    }

    @Test func expectations() {
        #expect(MessageRules.expectation(nil) == .none)
        #expect(MessageRules.expectation("100-Continue") == .continueBeforeBody)
        #expect(MessageRules.expectation("200-ok") == .unsupported)
        #expect(MessageRules.expectation("") == .unsupported)
    }

    @Test func bodilessResponsesAndTheHTTP10CloseRule() {
        #expect(MessageRules.isBodiless(requestIsHEAD: true, status: 200))
        #expect(MessageRules.isBodiless(requestIsHEAD: false, status: 204))
        #expect(MessageRules.isBodiless(requestIsHEAD: false, status: 304))
        #expect(!MessageRules.isBodiless(requestIsHEAD: false, status: 200))
        #expect(MessageRules.responseEndsConnection(callerIsHTTP10: true, bodiless: false, hasContentLength: false))
        #expect(!MessageRules.responseEndsConnection(callerIsHTTP10: true, bodiless: false, hasContentLength: true))
        #expect(!MessageRules.responseEndsConnection(callerIsHTTP10: true, bodiless: true, hasContentLength: false))
        #expect(!MessageRules.responseEndsConnection(callerIsHTTP10: false, bodiless: false, hasContentLength: false))
    }

    @Test func bodyFramingRefusesSmugglingShapes() {
        func framing(_ lengths: [Substring], _ encodings: [Substring] = []) -> BodyFraming? {
            try? BodyFraming.of(contentLength: lengths, transferEncoding: encodings).get()
        }
        #expect(framing([]) == .empty)
        #expect(framing(["0"]) == .empty)
        #expect(framing(["12"]) == .length(12))
        #expect(framing([], ["Chunked"]) == .chunked)
        #expect(framing(["12", "12"]) == nil, "duplicate")
        #expect(framing(["12", "13"]) == nil)
        #expect(framing(["-1"]) == nil)
        #expect(framing(["+1"]) == nil)
        #expect(framing([""]) == nil)
        #expect(framing(["١٢"]) == nil, "digits other than ASCII")
        #expect(framing(["99999999999999999999"]) == nil)
        #expect(framing(["5"], ["chunked"]) == nil)
        #expect(framing([], ["gzip"]) == nil)
        #expect(framing([], ["gzip", "chunked"]) == nil)
    }

    @Test func theUpstreamRequestTargetIsTheURLsPathAndQuery() {
        #expect(RequestTarget.of("https://api.example/v2/items?a=1") == "/v2/items?a=1")
        #expect(RequestTarget.of("https://api.example:8443/") == "/")
        #expect(RequestTarget.of("https://api.example") == "/")
        #expect(RequestTarget.of("https://api.example?q=1") == "/?q=1")
        #expect(RequestTarget.of("https://[::1]:8443/a/b") == "/a/b")
        #expect(RequestTarget.of("not a url") == "/")
    }
}
