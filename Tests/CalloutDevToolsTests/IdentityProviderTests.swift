import AsyncHTTPClient
import CalloutDevTools
import CalloutTestSupport
import CalloutTokens
import NIOCore
import Testing

@Suite struct IdentityProviderTests {
    private func post(_ fixture: IdentityProviderFixture, _ path: String, _ body: String) async throws
        -> (Int, String)
    {
        var request = HTTPClientRequest(url: fixture.provider.baseURL + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await fixture.httpClient.execute(request, timeout: .seconds(5))
        let bytes = try await response.body.collect(upTo: 65_536)
        return (Int(response.status.code), String(buffer: bytes))
    }

    @Test func refusesBadRequestsAndIntrospects() async throws {
        try await IdentityProviderFixture.with { fixture in
            let url = fixture.provider.tokenEndpointURL
            let client = fixture.client()
            // Unknown client, wrong audience, wrong grant type.
            var unknown = fixture.request()
            unknown.clientId = "nobody"
            await #expect(
                throws: TokenExchangeError.rejected(
                    status: 401, error: "invalid_client", description: "unknown client")
            ) {
                try await client.fetchToken(unknown)
            }
            let wrongAudience = fixture.request(
                assertion: fixture.kit.assertion(audience: "https://elsewhere/token"))
            await #expect(
                throws: TokenExchangeError.rejected(
                    status: 401, error: "invalid_client", description: "wrong audience")
            ) {
                try await client.fetchToken(wrongAudience)
            }
            let (status, body) = try await post(
                fixture, fixture.provider.configuration.tokenPath, "grant_type=password")
            #expect(status == 400 && body.contains("unsupported_grant_type"))
            #expect(try await post(fixture, "/nowhere", "").0 == 404)

            let token = try await client.fetchToken(fixture.request(scope: "api")).accessToken
            let active = try await post(fixture, "/introspect", "token=\(FormURLEncoding.encode(token))")
            #expect(active.1.contains(#""active":true"#) && active.1.contains(#""scope":"api""#))
            fixture.provider.revoke(token: token)
            #expect(try await post(fixture, "/introspect", "token=\(token)").1 == #"{"active":false}"#)
            #expect(fixture.provider.tokenRequestCount == 4)
            #expect(fixture.provider.requests.map(\.status) == [401, 401, 400, 200])
            #expect(url.hasPrefix("https://127.0.0.1:"))
        }
    }

    @Test func faultCanBeClearedAtRunTime() async throws {
        try await IdentityProviderFixture.with(expiresIn: 42) { fixture in
            fixture.provider.setFault(.serverError(500))
            await #expect(throws: TokenExchangeError.unavailable(status: 500, retryAfter: nil)) {
                try await fixture.client().fetchToken(fixture.request())
            }
            fixture.provider.setFault(.none)
            #expect(fixture.provider.fault == .none)
            let response = try await fixture.client().fetchToken(fixture.request())
            #expect(response.expiresIn == 42)
        }
    }
}
