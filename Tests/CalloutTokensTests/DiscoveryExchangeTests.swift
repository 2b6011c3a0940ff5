import CalloutDevTools
import CalloutTestSupport
import Foundation
import Testing

@testable import CalloutTokens

/// Reading issuer metadata from a real (development) provider over TLS: the RFC 8414 URL, the
/// OpenID Connect fallback, and what is refused (another issuer, a redirect, an oversized answer,
/// plain http to a non-loopback host).
@Suite struct DiscoveryExchangeTests {
    static let rfc8414 = "/.well-known/oauth-authorization-server"
    static let openID = "/.well-known/openid-configuration"

    func discover(_ fixture: IdentityProviderFixture, issuer: String? = nil) async -> Result<String, any Error> {
        do {
            return .success(
                try await fixture.client().discoverTokenEndpoint(
                    issuer: issuer ?? fixture.provider.baseURL, tlsConfiguration: nil))
        } catch {
            return .failure(error)
        }
    }

    func failure(_ result: Result<String, any Error>) -> String {
        if case .failure(let error) = result { return "\(error)" }
        return "succeeded"
    }

    @Test func theTokenEndpointIsReadFromRFC8414MetadataFirst() async throws {
        try await IdentityProviderFixture.with { fixture in
            let endpoint = try await discover(fixture).get()
            #expect(endpoint == fixture.provider.tokenEndpointURL)
            #expect(fixture.provider.metadataRequestCount == 1)
        }
    }

    @Test func openIDConnectMetadataIsTheFallback() async throws {
        try await IdentityProviderFixture.with { fixture in
            fixture.provider.setFault(.metadataAnswer(path: Self.rfc8414, status: 404, body: "{}"))
            let endpoint = try await discover(fixture).get()
            #expect(endpoint == fixture.provider.tokenEndpointURL)
            #expect(fixture.provider.metadataRequestCount == 2)
        }
    }

    @Test func anotherIssuerARedirectAndAnOversizedAnswerAreRefused() async throws {
        try await IdentityProviderFixture.with { fixture in
            let base = fixture.provider.baseURL
            fixture.provider.setFault(.metadataIssuer("https://impostor.example"))
            let impostor = failure(await discover(fixture))
            #expect(impostor.hasPrefix("token endpoint of issuer \(base) not discovered: "))
            #expect(impostor.contains(#"the metadata names issuer "https://impostor.example", not the configured"#))
            #expect(impostor.contains(base + Self.rfc8414) && impostor.contains(base + Self.openID))

            fixture.provider.setFault(
                .metadataAnswer(path: nil, status: 302, body: "{}", location: "https://elsewhere.example/meta"))
            #expect(failure(await discover(fixture)).contains("HTTP 302"))

            let padding = String(repeating: "x", count: 70_000)
            fixture.provider.setFault(
                .metadataAnswer(
                    path: nil, status: 200,
                    body: #"{"issuer":"\#(base)","token_endpoint":"\#(base)/t","pad":"\#(padding)"}"#))
            #expect(failure(await discover(fixture)).contains("larger than 65536 bytes"))

            fixture.provider.setFault(.none)
            #expect(failure(await discover(fixture, issuer: "http://idp.example")).contains("loopback"))
            // The configured issuer must match exactly: a trailing slash is another issuer.
            #expect(failure(await discover(fixture, issuer: base + "/")).contains("not the configured"))
        }
    }

    @Test func aSlowIssuerTimesOut() async throws {
        try await IdentityProviderFixture.with { fixture in
            fixture.provider.setFault(.slow(seconds: 4))
            let result: String
            do {
                result = try await fixture.client(timeout: .milliseconds(200)).discoverTokenEndpoint(
                    issuer: fixture.provider.baseURL, tlsConfiguration: nil)
            } catch {
                result = "\(error)"
            }
            #expect(result.contains("not discovered"), "\(result)")
            #expect(result.contains("openid-configuration: timed out: "), "\(result)")
        }
    }
}
