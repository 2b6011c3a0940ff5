import AsyncHTTPClient
import CalloutDevTools
import CalloutTestSupport
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import CalloutTokens

@Suite struct ExchangeClientTests {
    @Test func successAndExactFormBody() async throws {
        try await IdentityProviderFixture.with { fixture in
            let request = fixture.request()
            let response = try await fixture.client().fetchToken(request)
            #expect(response.tokenType == "Bearer")
            #expect(response.expiresIn == 300)
            #expect(response.scope == "api read")
            #expect(
                fixture.provider.isValid(token: response.accessToken)?.clientId == fixture.kit.clientId)
            let recorded = try #require(fixture.provider.requests.first)
            #expect(
                recorded.body
                    == "grant_type=client_credentials&client_id=client-1&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=\(request.clientAssertion)&scope=api+read"
            )
            #expect(recorded.contentType == "application/x-www-form-urlencoded")
            #expect(recorded.accept == "application/json")
            #expect(recorded.claims["aud"] == fixture.provider.tokenEndpointURL)
            fixture.provider.revoke(token: response.accessToken)
            #expect(fixture.provider.isValid(token: response.accessToken) == nil)
            // A replayed assertion (same jti) is refused by the verifier.
            await #expect(throws: TokenExchangeError.self) {
                try await fixture.client().fetchToken(request)
            }
            try assertNoSecrets(fixture, [request.clientAssertion, response.accessToken])
        }
    }

    @Test(arguments: [
        (
            DevelopmentIdentityProvider.Fault.oauthError(status: 400, error: "invalid_client"),
            "token_exchange_failed", 502
        ),
        (.serverError(500), "identity_provider_unavailable", 503),
        (.serverError(503), "identity_provider_unavailable", 503),
        (.tooManyRequests(retryAfter: 2), "identity_provider_unavailable", 503),
        (.malformedJSON, "token_exchange_failed", 502),
        (.missingAccessToken, "token_exchange_failed", 502),
        (.expiresIn(0), "token_exchange_failed", 502),
        (.expiresIn(-30), "token_exchange_failed", 502),
        (.closeConnection, "identity_provider_unavailable", 502),
        // Far longer than the 300 ms deadline, so a timer that fires late on a busy machine still wins.
        (.slow(seconds: 30), "identity_provider_unavailable", 504),
    ])
    func faultsMapToErrors(fault: DevelopmentIdentityProvider.Fault, code: String, status: Int)
        async throws
    {
        try await IdentityProviderFixture.with { fixture in
            fixture.provider.setFault(fault)
            let request = fixture.request()
            do {
                // Only the slow fault needs a short deadline; the others get room on a busy machine.
                let timeout: Duration
                if case .slow = fault { timeout = .milliseconds(300) } else { timeout = .seconds(10) }
                _ = try await fixture.client(timeout: timeout).fetchToken(request)
                Issue.record("expected an error for \(fault)")
            } catch let error as TokenExchangeError {
                #expect(error.code == code, "\(fault): \(error)")
                #expect(error.httpStatus == status, "\(fault): \(error)")
                if case .tooManyRequests = fault { #expect(error.retryAfterSeconds == 2) }
                #expect(!error.description.contains(request.clientAssertion))
            }
            try assertNoSecrets(fixture, [request.clientAssertion])
        }
    }

    @Test func hugeExpiresInIsCapped() async throws {
        try await IdentityProviderFixture.with { fixture in
            fixture.provider.setFault(.expiresIn(10_000_000))
            let response = try await fixture.client().fetchToken(fixture.request())
            #expect(response.expiresIn == 86_400)
        }
    }

    @Test func connectionRefusedIsUnreachable() async throws {
        let refusing = try RefusingPort()
        let port = refusing.port
        let httpClient = HTTPClient(
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            configuration: .init(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(2))))
        let client = TokenEndpointClient(
            httpClient: httpClient, limits: .init(timeout: .seconds(3)),
            logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }))
        let request = TokenRequest(
            identityProviderURL: "http://127.0.0.1:\(port)/token", clientId: "c", clientAssertion: "a.b.c"
        )
        do {
            _ = try await client.fetchToken(request)
            Issue.record("expected unreachable")
        } catch let error as TokenExchangeError {
            #expect(error.code == "identity_provider_unavailable", "\(error)")
            #expect(error == .unreachable("connection refused"), "\(error)")
            #expect(error.httpStatus == 502)
        }
        try await httpClient.shutdown()
        withExtendedLifetime(refusing) {}
    }

    @Test func plainHTTPToNonLoopbackIsRefused() async throws {
        let httpClient = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        let client = TokenEndpointClient(
            httpClient: httpClient, logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        await #expect(
            throws: TokenExchangeError.invalidRequest(
                "plain http is allowed only to loopback identity providers")
        ) {
            try await client.fetchToken(
                TokenRequest(
                    identityProviderURL: "http://idp.example/token", clientId: "c", clientAssertion: "a"))
        }
        try await httpClient.shutdown()
    }

    @Test(arguments: [
        "http://127.evil.example/token", "http://127.0.0.1@evil.example/token", "http://127.0.0.1.nip.io/token",
        "http://[::2]/token", "http://0x7f000001/token", "http://localhost.evil.example/token",
    ])
    func plainHTTPToALookalikeOfLoopbackIsRefused(_ url: String) {
        #expect(throws: TokenExchangeError.self, "\(url)") {
            try TokenEndpointClient.validateURL(url, what: "identity provider")
        }
    }

    @Test(arguments: [
        "http://127.0.0.1:8080/token", "http://127.1.2.3/token", "http://[::1]:9/token", "http://localhost/token",
        "https://idp.example/token",
    ])
    func loopbackAddressesAreParsed(_ url: String) throws {
        try TokenEndpointClient.validateURL(url, what: "identity provider")
    }

    @Test func cacheAndClientTogetherMakeOneIdentityProviderCall() async throws {
        try await IdentityProviderFixture.with { fixture in
            fixture.provider.setFault(.slow(seconds: 0.2))
            let cache = TokenCache()
            let client = fixture.client()
            let key = TokenCacheKey(externalCredential: "Acme", principal: "Sales", scope: "api read")
            let fetch: TokenCache.Fetch = { try await client.fetchToken(fixture.request()) }
            let tokens = try await withThrowingTaskGroup(of: AccessToken.self) { group in
                for _ in 0..<200 { group.addTask { try await cache.token(for: key, fetch: fetch) } }
                var tokens: [AccessToken] = []
                for try await token in group { tokens.append(token) }
                return tokens
            }
            #expect(tokens.count == 200)
            #expect(Set(tokens.map(\.id)).count == 1)
            #expect(fixture.provider.tokenRequestCount == 1)
            #expect(fixture.provider.isValid(token: tokens[0].value)?.scope == "api read")
            try assertNoSecrets(fixture, [tokens[0].value])
        }
    }

    private func assertNoSecrets(_ fixture: IdentityProviderFixture, _ secrets: [String]) throws {
        let logs = fixture.logs.all
        // The audit line of the exchange is there, and (below) holds no token nor assertion.
        let audit = logs.filter { $0.contains("token exchange") }
        #expect(!audit.isEmpty)
        #expect(audit.allSatisfy { $0.contains("jti") && $0.contains("idp_status") && $0.contains("client_id") })
        for line in logs {
            for secret in secrets {
                #expect(!line.contains(secret), "log line leaks a secret: \(line.prefix(80))")
                // The signature part alone is a secret too.
                if let signature = secret.split(separator: ".").last, signature.count > 16 {
                    #expect(!line.contains(signature))
                }
            }
        }
    }
}

@Suite struct ExpiredOnArrivalTests {
    @Test func aTokenWhoseLifetimeElapsedDuringTheExchangeIsRefused() async throws {
        try await IdentityProviderFixture.with(expiresIn: 1) { fixture in
            fixture.provider.setFault(.slow(seconds: 1.2))
            let request = fixture.request()
            await #expect {
                _ = try await fixture.client().fetchToken(request)
            } throws: { error in
                guard let e = error as? TokenExchangeError, case .malformedResponse(let why) = e else { return false }
                return e.code == "token_exchange_failed" && why.contains("expired before it arrived")
            }
        }
    }
}
