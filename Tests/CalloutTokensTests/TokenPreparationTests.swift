import CalloutCore
import CalloutDevTools
import Foundation
import Testing

@testable import CalloutTokens

@Suite struct TokenPreparationTests {
    let material: SigningMaterial
    let credential: ExternalCredentialConfig

    init() throws {
        let identity = try SigningIdentity.generate(keyType: .rsa, commonName: "prep-test")
        material = try SigningMaterial.load(
            privateKeyPEM: identity.privateKeyPEM, certificatePEM: identity.certificatePEM, passphrase: nil)
        credential = ExternalCredentialConfig(
            name: "Acme_API", identityProviderURL: URL(string: "https://idp.example/token")!,
            signingCertificate: "Signing",
            scope: try Formula(parsing: "{!\"session:role:\" + $User.Department}"),
            jwtClaims: [("tenant", try Formula(parsing: "acme")), ("nonce", try Formula(parsing: "{!UUID()}"))],
            principals: [
                PrincipalConfig(name: "Reader", sequenceNumber: 1, clientId: "reader-id", permissionSets: ["R"])
            ])
    }

    func preparation(uuid: @escaping @Sendable () -> UUID = { UUID() }) -> TokenPreparation {
        let materials = CredentialMaterials(signing: ["signing": material])
        return TokenPreparation(
            materials: { materials }, settings: { ProxySettings() }, now: { 1_800_000_000 }, uuid: uuid)
    }

    func demand(department: String) -> TokenDemand {
        TokenDemand(
            credential: credential, principal: credential.principals[0],
            identity: CallerIdentity(user: ["Department": department]), namedCredential: nil)
    }

    @Test func perUserScopeGivesPerUserKeys() throws {
        let p = preparation()
        let finance = try p.prepare(demand(department: "Finance"))
        let sales = try p.prepare(demand(department: "Sales"))
        #expect(finance.scope == "session:role:Finance")
        #expect(finance.key != sales.key)
        #expect(try p.prepare(demand(department: "Finance")).key == finance.key)
    }

    @Test func cacheKeyAloneMatchesThePreparedKey() throws {
        let p = preparation()
        // Formulas that read the caller: the key comes from the full preparation.
        #expect(try p.cacheKey(for: demand(department: "Finance")) == p.prepare(demand(department: "Finance")).key)
        // All constants (scope, claims, header): the shortcut must give exactly the same key.
        var constant = credential
        constant.scope = try Formula(parsing: "api read")
        constant.jwtClaims = [("tenant", try Formula(parsing: "acme")), ("tier", try Formula(parsing: "{!\"gold\"}"))]
        constant.jwtHeader = [("kid", try Formula(parsing: "key-1"))]
        let d = TokenDemand(
            credential: constant, principal: constant.principals[0], identity: CallerIdentity(user: [:]),
            namedCredential: nil)
        #expect(constant.jwtClaims.allSatisfy { $0.value.isConstant })
        #expect(try p.cacheKey(for: d) == p.prepare(d).key)
        // An empty constant scope is no scope, as in the full preparation.
        constant.scope = try Formula(parsing: "")
        let empty = TokenDemand(
            credential: constant, principal: constant.principals[0], identity: CallerIdentity(user: [:]),
            namedCredential: nil)
        #expect(try p.cacheKey(for: empty) == p.prepare(empty).key)
        #expect(try p.cacheKey(for: empty).scope == nil)
    }

    @Test func constantKeyMadeOnceIsEveryCallersKey() throws {
        let p = preparation()
        // A per-caller scope: no key can be made beforehand.
        #expect(p.constantCacheKey(credential: credential, principal: credential.principals[0]) == nil)
        var constant = credential
        constant.scope = try Formula(parsing: "api read")
        constant.jwtClaims = [("tenant", try Formula(parsing: "acme"))]
        constant.jwtHeader = [("kid", try Formula(parsing: "key-1"))]
        let made = p.constantCacheKey(credential: constant, principal: constant.principals[0])
        #expect(made != nil)
        for department in ["Finance", "Sales"] {
            let d = TokenDemand(
                credential: constant, principal: constant.principals[0],
                identity: CallerIdentity(callerName: "c", user: ["Department": department]), namedCredential: nil)
            #expect(try made == p.prepare(d).key)
            #expect(try made == p.cacheKey(for: d))
        }
        // A constant too long for max_formula_value_length fails per request, so none is made.
        constant.scope = try Formula(parsing: String(repeating: "s", count: ProxySettings().maxFormulaValueLength + 1))
        #expect(p.constantCacheKey(credential: constant, principal: constant.principals[0]) == nil)
    }

    @Test func volatileClaimsDoNotSplitTheCache() throws {
        let p = preparation()
        let a = try p.prepare(demand(department: "X"))
        let b = try p.prepare(demand(department: "X"))
        #expect(a.claims.first { $0.name == "nonce" }?.value != b.claims.first { $0.name == "nonce" }?.value)
        #expect(a.key == b.key)
    }

    @Test func claimsReadTheEvaluatedScope() throws {
        var withScopeClaim = credential
        withScopeClaim.jwtClaims = [("requested", try Formula(parsing: "{!$Credential.Acme_API.Scope}"))]
        let p = preparation()
        let d = TokenDemand(
            credential: withScopeClaim, principal: credential.principals[0],
            identity: CallerIdentity(user: ["Department": "Finance"]), namedCredential: nil)
        let prepared = try p.prepare(d)
        #expect(prepared.claims.first { $0.name == "requested" }?.value == "session:role:Finance")
    }

    @Test func notBeforeIsSetBackByTheConfiguredSkew() throws {
        let materials = CredentialMaterials(signing: ["signing": material])
        var settings = ProxySettings()
        settings.assertionNotBeforeSkewSeconds = 30
        let p = TokenPreparation(
            materials: { materials }, settings: { [settings] in settings }, now: { 1_800_000_000 }, uuid: { UUID() })
        let (jwt, jti) = try p.assertion(for: demand(department: "Finance"))
        let claims = try DecodedJWT(jwt).claims
        #expect(claims["iat"] == .integer(1_800_000_000))
        #expect(claims["nbf"] == .integer(1_800_000_000 - 30))
        // The jti returned (and logged) is the one signed.
        #expect(claims["jti"] == .string(jti))
    }

    @Test func assertionCarriesClaimsAndVerifies() throws {
        let p = preparation()
        let (jwt, jti) = try p.assertion(for: demand(department: "Finance"))
        let verifier = AssertionVerifier(
            key: material.key.verificationKey, expectedAudience: "https://idp.example/token",
            expectedClientId: "reader-id")
        let verified = try verifier.verify(jwt, now: 1_800_000_000)
        #expect(verified.jti == jti)
        #expect(verified.claims["tenant"]?.stringValue == "acme")
        #expect(verified.expiresAt == 1_800_000_120)
    }

    @Test func formulaFailureIsAProblemWithoutInputs() throws {
        var c = credential
        c.scope = try Formula(parsing: "{!BASE64DECODE($User.Department)}")
        let d = TokenDemand(
            credential: c, principal: c.principals[0], identity: CallerIdentity(user: ["Department": "not base64 !!"]),
            namedCredential: nil)
        #expect {
            _ = try preparation().prepare(d)
        } throws: { error in
            guard let problem = error as? Problem else { return false }
            return problem.code == "formula_failed" && problem.detail.contains("scope")
                && !problem.detail.contains("not base64")
        }
    }

    @Test func headerInjectionThroughUserAttributesIsRefused() throws {
        #expect(throws: Problem.self) { _ = try preparation().prepare(demand(department: "x\r\nInjected: 1")) }
    }
}
