import Foundation
import Logging
import Testing

@testable import CalloutTokens

/// Issuer metadata: where it is read, what is accepted, and the discovery state as fetches
/// succeed and fail. Pure, plus the driver with an injected fetch.
@Suite struct TokenEndpointDiscoveryTests {
    @Test func metadataURLsFollowRFC8414ThenOpenIDConnect() {
        #expect(
            IssuerMetadata.metadataURLs(issuer: "https://idp.example") == [
                "https://idp.example/.well-known/oauth-authorization-server",
                "https://idp.example/.well-known/openid-configuration",
            ])
        #expect(
            IssuerMetadata.metadataURLs(issuer: "https://idp.example:8443/tenant/one/") == [
                "https://idp.example:8443/.well-known/oauth-authorization-server/tenant/one",
                "https://idp.example:8443/tenant/one/.well-known/openid-configuration",
            ])
    }

    static func body(_ json: String) -> [UInt8] { Array(json.utf8) }

    @Test func theTokenEndpointIsTakenOnlyFromTheConfiguredIssuersMetadata() throws {
        let issuer = "https://idp.example"
        #expect(
            try IssuerMetadata.tokenEndpoint(
                from: Self.body(#"{"issuer":"https://idp.example","token_endpoint":"https://idp.example/token"}"#),
                issuer: issuer) == "https://idp.example/token")
        func problem(_ json: String, issuer: String = "https://idp.example") -> String {
            do {
                _ = try IssuerMetadata.tokenEndpoint(from: Self.body(json), issuer: issuer)
                return "accepted"
            } catch {
                return error.description
            }
        }
        #expect(
            problem(#"{"issuer":"https://evil.example","token_endpoint":"https://evil.example/token"}"#)
                == #"the metadata names issuer "https://evil.example", not the configured "https://idp.example" (RFC 8414 §3.3)"#
        )
        #expect(
            problem(#"{"issuer":"https://idp.example/","token_endpoint":"https://idp.example/t"}"#).contains(
                "not the configured"))
        #expect(problem(#"{"issuer":"https://idp.example"}"#) == "the metadata has no token_endpoint")
        #expect(problem("[1]") == "the metadata is not a JSON object")
        #expect(
            problem(#"{"issuer":"https://idp.example","token_endpoint":"http://idp.example/token"}"#).contains(
                "plain http is allowed only to loopback token endpoints"))
        #expect(
            problem(#"{"issuer":"https://idp.example","token_endpoint":"http://127.0.0.1/token"}"#)
                == #"token_endpoint "http://127.0.0.1/token" is not https, but the issuer is"#)
        #expect(
            problem(
                #"{"issuer":"http://127.0.0.1:9","token_endpoint":"http://127.0.0.1:9/token"}"#,
                issuer: "http://127.0.0.1:9")
                == "accepted")
    }

    static let failure = TokenEndpointDiscoveryError(issuer: "https://i", reasons: ["HTTP 503"])

    @Test func theStateMachineWaitsFailsFastBacksOffAndKeepsAKnownEndpoint() {
        var machine = DiscoveryStateMachine()
        let r1 = machine.demand("https://i", now: 0)
        #expect(r1 == .start)
        let r2 = machine.demand("https://i", now: 0)
        #expect(r2 == .wait)
        let r3 = machine.failed("https://i", Self.failure, now: 0)
        #expect(r3 == 1)
        let failing = machine.demand("https://i", now: 0.5)
        guard case .fail(let error) = failing else {
            Issue.record("expected a failure")
            return
        }
        #expect(error.retryAfterSeconds == 1)
        #expect(machine.failures["https://i"] == Self.failure)
        let r4 = machine.demand("https://i", now: 1)
        #expect(r4 == .start)
        let r5 = machine.failed("https://i", Self.failure, now: 1)
        #expect(r5 == 2)
        let r6 = machine.refresh("https://i")
        #expect(r6)
        // A retry under way is still a failure until it succeeds.
        #expect(machine.failures["https://i"] == Self.failure)
        let r7 = machine.refresh("https://i")
        #expect(!r7)
        let r8 = machine.failed("https://i", Self.failure, now: 1)
        #expect(r8 == 4)
        let r9 = machine.refresh("https://i")
        #expect(r9)
        machine.succeeded("https://i", endpoint: "https://i/token")
        #expect(machine.failures.isEmpty)
        let r10 = machine.demand("https://i", now: 2)
        #expect(r10 == .use("https://i/token"))
        // A reload fetches again; the known endpoint serves meanwhile and after a failure.
        let r11 = machine.refresh("https://i")
        #expect(r11)
        let r12 = machine.demand("https://i", now: 2)
        #expect(r12 == .use("https://i/token"))
        let r13 = machine.failed("https://i", Self.failure, now: 2)
        #expect(r13 == 1)
        let r14 = machine.demand("https://i", now: 2)
        #expect(r14 == .use("https://i/token"))
        machine.keep(only: [])
        #expect(machine.entries.isEmpty)
        #expect(DiscoveryStateMachine.backoff(attempt: 10) == 60)
    }

    /// A fetch that fails until told otherwise, counting its calls.
    final class FlakyFetch: Sendable {
        let state = LockedState((calls: 0, works: false))
        func fetch(_ issuer: String) async throws -> String {
            let works = state.withLock { s in
                s.calls += 1
                return s.works
            }
            if works { return issuer + "/token" }
            throw TokenEndpointDiscoveryError(issuer: issuer, reasons: ["HTTP 503"])
        }
    }

    @Test func theDriverRetriesWithoutTrafficAndSharesOneFetch() async throws {
        let flaky = FlakyFetch()
        let discovery = TokenEndpointDiscovery(
            fetch: { try await flaky.fetch($0) }, logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        defer { discovery.shutdown() }
        discovery.refresh(issuers: ["https://i"])
        await #expect(throws: TokenEndpointDiscoveryError.self) {
            try await discovery.tokenEndpoint(issuer: "https://i")
        }
        #expect(discovery.failures["https://i"] != nil)
        flaky.state.withLock { $0.works = true }
        // The scheduled retry (after 1 s) succeeds with no demand.
        for _ in 0..<100 where !discovery.failures.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
        #expect(discovery.failures.isEmpty)
        #expect(try await discovery.tokenEndpoint(issuer: "https://i") == "https://i/token")
        let calls = flaky.state.withLock { $0.calls }
        #expect(try await discovery.tokenEndpoint(issuer: "https://i") == "https://i/token")
        #expect(flaky.state.withLock { $0.calls } == calls)
    }
}
