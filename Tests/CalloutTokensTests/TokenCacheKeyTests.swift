import CalloutCore
import CalloutDevTools
import Foundation
import Testing

@testable import CalloutTokens

/// The cache key holds every input that differs between callers and everything of the
/// configuration that decides the token, so no caller ever gets a token meant for another one or
/// for another configuration.
@Suite struct TokenCacheKeyTests {
    let material: SigningMaterial
    let otherMaterial: SigningMaterial

    init() throws {
        let a = try SigningIdentity.generate(keyType: .rsa, commonName: "key-a")
        let b = try SigningIdentity.generate(keyType: .rsa, commonName: "key-b")
        material = try SigningMaterial.load(privateKeyPEM: a.privateKeyPEM, certificatePEM: nil, passphrase: nil)
        otherMaterial = try SigningMaterial.load(privateKeyPEM: b.privateKeyPEM, certificatePEM: nil, passphrase: nil)
    }

    func credential(
        clientId: String = "acme-admin", idp: String = "https://idp.example/token",
        algorithm: SigningAlgorithm = .rs256, claims: [(String, String)] = []
    ) throws -> ExternalCredentialConfig {
        ExternalCredentialConfig(
            name: "Acme_API", identityProviderURL: URL(string: idp)!, signingCertificate: "Signing",
            signingAlgorithm: algorithm, scope: try Formula(parsing: "api"),
            jwtClaims: try claims.map { ($0.0, try Formula(parsing: $0.1)) },
            principals: [PrincipalConfig(name: "Admin", sequenceNumber: 1, clientId: clientId, permissionSets: ["A"])])
    }

    func preparation(_ material: SigningMaterial) -> TokenPreparation {
        let materials = CredentialMaterials(signing: ["signing": material])
        return TokenPreparation(materials: { materials }, settings: { ProxySettings() })
    }

    func demand(_ credential: ExternalCredentialConfig, user: [String: String] = [:]) -> TokenDemand {
        TokenDemand(
            credential: credential, principal: credential.principals[0], identity: CallerIdentity(user: user),
            namedCredential: nil)
    }

    // MARK: Everything that decides the token

    @Test func clientIdIdentityProviderKeyAndAlgorithmEachSplitTheKey() throws {
        let base = try preparation(material).cacheKey(for: demand(try credential()))
        let variants = [
            try preparation(material).cacheKey(for: demand(try credential(clientId: "acme-admin-2"))),
            try preparation(material).cacheKey(for: demand(try credential(idp: "https://idp2.example/token"))),
            try preparation(otherMaterial).cacheKey(for: demand(try credential())),
            try preparation(material).cacheKey(for: demand(try credential(algorithm: .rs512))),
        ]
        for variant in variants {
            #expect(variant != base)
            #expect(variant.externalCredential == base.externalCredential)
            #expect(variant.principal == base.principal)
        }
        #expect(Set(variants).count == variants.count)
        #expect(try preparation(material).cacheKey(for: demand(try credential())) == base)
        #expect(base.issuer.signingKeyFingerprint == material.publicKeyFingerprint)
        #expect(base.issuer.signingKeyFingerprint.count == 64)
        #expect(base.issuer.flow == "client_credentials_jwt_assertion")
    }

    /// A fetch started under the old configuration (before a reload changed the principal's
    /// client id) completes after the reload: it fills the old key, and a callout under the new
    /// configuration still fetches its own token.
    @Test func aFetchStartedBeforeAReloadNeverFillsTheNewConfigurationsKey() throws {
        let oldKey = try preparation(material).cacheKey(for: demand(try credential(clientId: "old-client")))
        let newKey = try preparation(material).cacheKey(for: demand(try credential(clientId: "new-client")))
        var machine = TokenCacheStateMachine()
        guard case .wait(.some(let oldFetch)) = machine.request(oldKey, now: 0, waiter: 1) else {
            Issue.record("expected a fetch under the old configuration")
            return
        }
        _ = machine.fetchSucceeded(
            oldKey, fetch: oldFetch,
            response: TokenResponse(accessToken: "old", tokenType: "Bearer", scope: nil, expiresIn: 3600), now: 1)
        guard case .wait(.some) = machine.request(newKey, now: 2, waiter: 2) else {
            Issue.record("the new configuration must not be served the old client's token")
            return
        }
    }

    // MARK: Per-caller inputs

    /// Claims whose formulas read a user field besides the clock or randomness: before, any
    /// formula whose text contained "UUID" or "NOW_EPOCH" was left out of the key.
    static let perUserClaims: [(String, String)] = [
        ("uid", #"{!"uuid:" + $User.Uuid}"#),
        ("mail", "{!$User.Email & NOW_EPOCH()}"),
        ("dept", "{!$User.Department & UUID()}"),
        ("nonce", "{!UUID()}"),
        ("stamp", "{!NOW_EPOCH()}"),
    ]

    @Test func callersShareATokenExactlyWhenTheirInputsAreEqual() throws {
        let p = preparation(material)
        let credential = try credential(claims: Self.perUserClaims)
        let fields = ["Uuid", "Email", "Department"]
        // Every caller whose fields are each absent, "a" or "b" (27), field names in varying case.
        var callers: [[String: String]] = []
        for index in 0..<27 {
            var user: [String: String] = [:]
            var rest = index
            for (position, field) in fields.enumerated() {
                let choice = rest % 3
                rest /= 3
                guard choice > 0 else { continue }
                let name = (index + position) % 2 == 0 ? field : field.uppercased()
                user[name] = choice == 1 ? "a" : "b"
            }
            callers.append(user)
        }
        let keys = try callers.map { try p.cacheKey(for: demand(credential, user: $0)) }
        // Every pair: one token exactly when the inputs are equal.
        for (i, a) in callers.enumerated() {
            for (j, b) in callers.enumerated() {
                let inputsEqual = fields.allSatisfy { field in
                    FormulaContext(user: a).userValue(lowercasedField: field.lowercased())
                        == FormulaContext(user: b).userValue(lowercasedField: field.lowercased())
                }
                #expect((keys[i] == keys[j]) == inputsEqual, "\(a) vs \(b)")
            }
            // The key is stable for one caller though the clock and UUID claims change.
            #expect(try p.cacheKey(for: demand(credential, user: a)) == keys[i])
        }
    }

    @Test func aVolatileFormulaKeysOnTheNamedCredentialItReads() throws {
        let p = preparation(material)
        let credential = try credential(claims: [("target", "{!$Named.Name & NOW_EPOCH()}")])
        func named(_ name: String) -> NamedCredentialConfig {
            NamedCredentialConfig(name: name, url: URL(string: "https://api.example")!, externalCredential: "Acme_API")
        }
        var one = demand(credential)
        one.namedCredential = named("One")
        var two = demand(credential)
        two.namedCredential = named("Two")
        #expect(try p.cacheKey(for: one) != p.cacheKey(for: two))
        #expect(try p.cacheKey(for: one) == p.cacheKey(for: one))
    }
}
