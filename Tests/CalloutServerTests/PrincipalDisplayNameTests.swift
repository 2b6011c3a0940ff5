import CalloutCore
import CalloutServer
import Foundation
import Testing

/// A principal named as the page this model follows names them ("Marketing Group"): asked for
/// with `X-Callout-Principal`, chosen, logged, and read by `$Credential.<Name>.PrincipalName`.
@Suite(.serialized) struct PrincipalDisplayNameTests {
    @Test func aPrincipalNameWithASpaceWorksEndToEnd() async throws {
        try await ProxyHarness.with(config: { env in
            ProxyHarness.standardConfig(
                env,
                namedSettings: """
                    [[named_credential.custom_header]]
                    name = "X-Principal"
                    value = "{!$Credential.Acme_API.PrincipalName}"
                    """
            ).replacingOccurrences(of: #"name = "Reader""#, with: #"name = "Marketing Group""#)
        }) { h in
            // Admins qualify for both principals; the header asks for the one with a space, in
            // another case, and the permission set is presented in another case too.
            let ok = try await h.viaProxy(
                .GET, "http://Acme/x",
                headers: [("X-Callout-Permission-Sets", "ADMINS"), ("X-Callout-Principal", "marketing group")])
            #expect(ok.status == 200, "\(ok.body.prefix(200))")
            let token = try #require(ok.echoed("Authorization")).dropFirst("Bearer ".count)
            #expect(ok.echoed("X-Principal") == "Marketing Group")
            #expect(h.idp.isValid(token: String(token))?.clientId == "acme-reader")
            // The access line is written just after the answer: wait for it (bounded).
            var logged = false
            for _ in 0..<200 where !logged {
                logged = h.logs.lines.contains { $0.contains("callout") && $0.contains("Marketing Group") }
                if !logged { try await Task.sleep(for: .milliseconds(10)) }
            }
            #expect(logged)
        }
    }
}
