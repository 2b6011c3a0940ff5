import Foundation
import Testing

@testable import CalloutCore

/// The configuration as the page it follows describes it: principal names as display names,
/// case-insensitive permission sets and profiles, the claims the proxy owns, refresh codes.
@Suite struct SeedFidelityTests {
    // MARK: Principal names

    @Test func principalNamesAreDisplayNames() throws {
        let config = try ConfigLoader.load(text: variant(#"name = "Reader""#, #"name = "Marketing Group""#))
        let credential = try #require(config.externalCredential("Acme_API"))
        #expect(credential.principals.map(\.name) == ["Admin", "Marketing Group"])
        #expect(credential.principal("marketing group")?.clientId == "acme-reader")
        let identity = CallerIdentity(permissionSets: ["Readers"], requestedPrincipal: "Marketing Group")
        #expect(try PrincipalResolver.choose(credential, for: identity).get().name == "Marketing Group")
        let parameters = credential.formulaParameters(principal: credential.principals[1])
        #expect(parameters["PrincipalName"] == "Marketing Group")
    }

    @Test(arguments: [
        (#"" Reader""#, "must not begin or end with a space"),
        (#""Reader ""#, "must not begin or end with a space"),
        (#""""#, "must not be empty"),
        ("\"" + String(repeating: "a", count: 81) + "\"", "at most 80 characters"),
        (#""Réader""#, "printable ASCII"),
        (#""Tab\tName""#, "printable ASCII"),
    ])
    func badPrincipalNamesAreExplained(_ name: String, _ message: String) {
        let found = issues(variant(#"name = "Reader""#, "name = \(name)"))
        #expect(
            found.contains { $0.keyPath.hasSuffix("principal[0].name") && $0.message.contains(message) }, "\(found)")
    }

    @Test func principalNamesAreUniqueWithoutRegardToCase() {
        let found = issues(variant(#"name = "Reader""#, #"name = "ADMIN""#))
        #expect(
            found.contains { $0.keyPath.hasSuffix("principal[1].name") && $0.message.contains("already named 'Admin'") },
            "\(found)")
    }

    @Test func otherNamesStayAPINames() {
        let found = issues(variant(#"name = "Acme_API""#, #"name = "Acme API""#))
        #expect(found.contains { $0.message.contains("must not contain spaces") })
    }

    // MARK: Permission sets and profiles

    @Test func permissionSetsAndProfilesMatchWithoutRegardToCase() {
        let credential = ExternalCredentialConfig(
            name: "Acme", identityProviderURL: URL(string: "https://idp.example/t")!, signingCertificate: "S",
            principals: [
                PrincipalConfig(name: "Admin", sequenceNumber: 1, clientId: "a", permissionSets: ["Acme_Admins"]),
                PrincipalConfig(name: "Ops", sequenceNumber: 2, clientId: "o", profiles: ["Integration User"]),
            ])
        #expect(
            PrincipalResolver.candidates(credential, for: CallerIdentity(permissionSets: ["acme_ADMINS"])).count == 1)
        #expect(
            PrincipalResolver.candidates(credential, for: CallerIdentity(profile: "integration user")).map(\.name)
                == ["Ops"])
        #expect(PrincipalResolver.candidates(credential, for: CallerIdentity(permissionSets: ["Acme_Admin"])).isEmpty)
    }

    // MARK: JWT claims

    @Test(arguments: ["iat", "nbf", "jti"])
    func theProxysOwnClaimsCannotBeOverridden(_ claim: String) {
        let text = variant(
            "  [[external_credential.principal]]",
            "  [external_credential.jwt_claims]\n  \(claim) = \"1\"\n\n  [[external_credential.principal]]")
        let found = issues(text)
        #expect(
            found.contains {
                $0.keyPath.hasSuffix("jwt_claims.\(claim)") && $0.message.contains("cannot be overridden")
            }, "\(found)")
    }

    @Test func issSubAudAndExpStayEditable() throws {
        let text = variant(
            "  [[external_credential.principal]]",
            """
              [external_credential.jwt_claims]
              iss = "issuer"
              sub = "subject"
              aud = "audience"
              exp = "{!NOW_EPOCH() + 60}"
              tenant = "acme"

              [[external_credential.principal]]
            """)
        let config = try ConfigLoader.load(text: text)
        #expect(config.externalCredentials[0].jwtClaims.map(\.name).sorted() == ["aud", "exp", "iss", "sub", "tenant"])
    }

    // MARK: Refresh status codes and new settings

    @Test func listing401IsAWarningNotAnError() throws {
        let text = variant(
            #"signing_certificate = "Acme_Signing""#,
            #"signing_certificate = "Acme_Signing""# + "\nadditional_refresh_status_codes = [401, 403]")
        let config = try ConfigLoader.load(text: text, file: "test.conf")
        #expect(config.externalCredentials[0].additionalRefreshStatusCodes == [403])
        #expect(config.warnings.count == 1)
        #expect(config.warnings[0].description.hasPrefix("test.conf:"))
        #expect(config.warnings[0].keyPath.hasSuffix("additional_refresh_status_codes[0]"))
        #expect(config.warnings[0].message.contains("401 always refreshes"))
    }

    @Test func newSettingsHaveDefaultsAndLimits() throws {
        let defaults = try ConfigLoader.load(text: validConfig)
        #expect(defaults.proxy.minTokenRefreshIntervalSeconds == 10)
        #expect(defaults.proxy.assertionNotBeforeSkewSeconds == 0)
        #expect(defaults.externalCredentials[0].prefetch == false)
        let text = variant(
            #"listen = "127.0.0.1:8080""#,
            #"listen = "127.0.0.1:8080""#
                + "\nmin_token_refresh_interval_seconds = 0\nassertion_not_before_skew_seconds = 30"
        ).replacingOccurrences(
            of: #"signing_certificate = "Acme_Signing""#,
            with: "signing_certificate = \"Acme_Signing\"\nprefetch = true")
        let config = try ConfigLoader.load(text: text)
        #expect(config.proxy.minTokenRefreshIntervalSeconds == 0)
        #expect(config.proxy.assertionNotBeforeSkewSeconds == 30)
        #expect(config.externalCredentials[0].prefetch)
        #expect(!issues(text.replacingOccurrences(of: "= 30", with: "= 601")).isEmpty)
    }

    // MARK: $User and $Credential

    @Test func userFieldsAreCaseInsensitiveAndDeterministic() throws {
        let formula = try Formula(parsing: "{!$User.email}")
        #expect(try formula.evaluate(in: FormulaContext(user: ["EMAIL": "a@x"])) == "a@x")
        // Keys differing only by case: the first in code-point order wins, whatever the dictionary order.
        for _ in 0..<20 {
            let context = FormulaContext(user: ["email": "lower", "Email": "title", "EMAIL": "upper"])
            #expect(try formula.evaluate(in: context) == "upper")
        }
    }

    @Test func aConfiguredUserValueWinsOverAHeader() throws {
        // SHA-256 of "secret".
        let digest = try #require(Hex.decode("2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"))
        let caller = CallerConfig(
            name: "App", tokenSHA256: digest, user: ["Department": "Finance"], trustIdentityHeaders: true)
        let resolver = IdentityResolver(settings: ProxySettings(), callers: [caller])
        let identity = try resolver.resolve(
            peer: [10, 0, 0, 1],
            headers: [
                ("Proxy-Authorization", "Bearer secret"), ("X-Callout-User-department", "Sales"),
                ("X-Callout-User-Email", "first@x"), ("x-callout-user-EMAIL", "second@x"),
            ]
        ).get()
        #expect(identity.user == ["department": "Finance", "email": "second@x"])
        let context = FormulaContext(user: identity.user)
        #expect(try Formula(parsing: "{!$User.DEPARTMENT}").evaluate(in: context) == "Finance")
    }

    @Test func credentialScopeIsTheScope() throws {
        let credential = ExternalCredentialConfig(
            name: "Acme", identityProviderURL: URL(string: "https://idp.example/t")!, signingCertificate: "S",
            scope: try Formula(parsing: "api.read"),
            principals: [PrincipalConfig(name: "Admin", sequenceNumber: 1, clientId: "a", permissionSets: ["A"])])
        let principal = credential.principals[0]
        #expect(credential.formulaParameters(principal: principal)["Scope"] == "api.read")
        #expect(credential.formulaParameters(principal: principal, scope: "per-user")["Scope"] == "per-user")
        let context = FormulaContext(credentials: ["Acme": credential.formulaParameters(principal: principal)])
        #expect(try Formula(parsing: "{!$Credential.Acme.Scope}").evaluate(in: context) == "api.read")
    }
}
