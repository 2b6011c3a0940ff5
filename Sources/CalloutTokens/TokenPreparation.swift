import CalloutCore
import Foundation

/// Turns a token demand into what the cache key and the assertion need, without any I/O:
/// formulas evaluated for the caller, and the signed client assertion. Used by the token
/// service, `explain` and `callout-proxy assertion`.
public struct TokenPreparation: Sendable {
    let materials: @Sendable () -> CredentialMaterials
    let settings: @Sendable () -> ProxySettings
    let now: @Sendable () -> Int64
    let uuid: @Sendable () -> UUID

    public init(
        materials: @escaping @Sendable () -> CredentialMaterials, settings: @escaping @Sendable () -> ProxySettings,
        now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) },
        uuid: @escaping @Sendable () -> UUID = { UUID() }
    ) {
        self.materials = materials
        self.settings = settings
        self.now = now
        self.uuid = uuid
    }

    /// For commands that read a fixed configuration.
    public init(config: ProxyConfig, materials: CredentialMaterials) {
        self.init(materials: { materials }, settings: { config.proxy })
    }

    /// The evaluated, per-caller inputs of one token: what the cache key and the assertion share.
    public struct Prepared: Sendable {
        public let key: TokenCacheKey
        public let scope: String?
        public let claims: [(name: String, value: String)]
        public let header: [(name: String, value: String)]
    }

    /// Evaluates scope, claims and header formulas for `demand`. Throws a ``Problem``.
    public func prepare(_ demand: TokenDemand) throws -> Prepared {
        let credential = demand.credential
        var context = FormulaContext(
            user: demand.identity.user,
            credentials: [credential.name: credential.formulaParameters(principal: demand.principal)],
            allowSecrets: false, namedCredentialName: demand.namedCredential?.name,
            namedCredentialURL: demand.namedCredential?.url.absoluteString, now: now, uuid: uuid,
            maxValueLength: settings().maxFormulaValueLength)
        var scopeContext = context
        scopeContext.use = .scope
        func evaluate(_ f: Formula, _ location: String) throws -> String {
            do { return try f.evaluate(in: location == "scope" ? scopeContext : context) } catch {
                throw Problem.formulaFailed(
                    demand.namedCredential?.name, location: "external_credential \(credential.name) \(location)",
                    message: error.description)
            }
        }
        let scope = try credential.scope.map { try evaluate($0, "scope") }.flatMap { $0.isEmpty ? nil : $0 }
        // Claims and header entries read the evaluated scope through $Credential.<Name>.Scope.
        let parameters = credential.formulaParameters(principal: demand.principal, scope: scope ?? "")
        context.credentials = [credential.name: parameters]
        let claims = try credential.jwtClaims.map {
            (name: $0.name, value: try evaluate($0.value, "jwt_claims.\($0.name)"))
        }
        let header = try credential.jwtHeader.map {
            (name: $0.name, value: try evaluate($0.value, "jwt_header.\($0.name)"))
        }
        var inputs: [String: String] = [:]
        for (formula, claim) in zip(credential.jwtClaims.map(\.value), claims) {
            Self.addKeyInputs(of: formula, value: claim.value, as: "claim." + claim.name, context, to: &inputs)
        }
        for (formula, entry) in zip(credential.jwtHeader.map(\.value), header) {
            Self.addKeyInputs(of: formula, value: entry.value, as: "header." + entry.name, context, to: &inputs)
        }
        let key = TokenCacheKey(issuer: issuer(for: demand), scope: scope, claims: inputs)
        return Prepared(key: key, scope: scope, claims: claims, header: header)
    }

    /// What one claim or header formula adds to the cache key: its value, or, for a formula that
    /// reads the clock or randomness (whose value differs on every evaluation), the values of
    /// every merge field it reads, so callers who differ in any input still never share a token.
    static func addKeyInputs(
        of formula: Formula, value: String, as name: String, _ context: FormulaContext,
        to inputs: inout [String: String]
    ) {
        guard formula.readsClockOrRandom else {
            inputs[name] = value
            return
        }
        for field in formula.referencedUserFields {
            inputs[name + "#user." + field] = context.userValue(lowercasedField: field)
        }
        if formula.referencesNamedCredential {
            inputs[name + "#named.name"] = context.namedCredentialName ?? ""
            inputs[name + "#named.url"] = context.namedCredentialURL ?? ""
        }
        for parameter in formula.referencedCredentialParameters {
            for (credential, values) in context.credentials {
                inputs[name + "#credential." + credential + "." + parameter] = values[parameter] ?? ""
            }
        }
    }

    /// Everything of the configuration that decides `demand`'s token. A client secret takes part
    /// only as its fingerprint.
    public func issuer(for demand: TokenDemand) -> TokenIssuer {
        let credential = demand.credential
        let materials = materials()
        var fingerprint =
            credential.flow.signsJWT
            ? materials.signingMaterial(credential.signingCertificate)?.publicKeyFingerprint ?? "" : ""
        if credential.clientAuthentication.usesClientSecret {
            let secret =
                materials.clientSecret(credential: credential.name, principal: demand.principal.name)?.fingerprint ?? ""
            fingerprint += (fingerprint.isEmpty ? "" : "+") + "secret:" + secret
        }
        let flow =
            credential.flow == .clientCredentialsJWTAssertion
            ? ExternalCredentialConfig.authenticationFlow
            : credential.flow.rawValue + "+" + credential.clientAuthentication.rawValue
        return TokenIssuer(
            externalCredential: credential.name, principal: demand.principal.name, clientId: demand.principal.clientId,
            identityProviderURL: credential.identityProviderIssuer.map { "issuer:" + $0.absoluteString }
                ?? credential.identityProviderURL.absoluteString,
            signingKeyFingerprint: fingerprint,
            algorithm: credential.flow.signsJWT ? credential.signingAlgorithm.rawValue : "", flow: flow,
            identityProviderClientCertificate: credential.identityProviderClientCertificate)
    }

    /// The cache key alone, for the data plane's lookup on every callout. When scope, claims and
    /// header values are constants (the common case) no formula context is built; otherwise
    /// this is ``prepare(_:)``'s key. Throws a ``Problem``.
    public func cacheKey(for demand: TokenDemand) throws -> TokenCacheKey {
        try constantCacheKey(demand) ?? prepare(demand).key
    }

    /// The key of `principal`'s token when the credential's scope, claims and header values are
    /// constants: then no caller's identity takes part in it, and it can be made once per
    /// configuration. `nil` when a formula must be evaluated per caller.
    public func constantCacheKey(credential: ExternalCredentialConfig, principal: PrincipalConfig) -> TokenCacheKey? {
        constantCacheKey(
            TokenDemand(credential: credential, principal: principal, identity: CallerIdentity(), namedCredential: nil))
    }

    private func constantCacheKey(_ demand: TokenDemand) -> TokenCacheKey? {
        let credential = demand.credential
        let limit = settings().maxFormulaValueLength
        var scope: String? = nil
        if let formula = credential.scope {
            guard let value = formula.constantValue(maxValueLength: limit) else { return nil }
            scope = value.isEmpty ? nil : value
        }
        var inputs: [String: String] = [:]
        for claim in credential.jwtClaims {
            guard let value = claim.value.constantValue(maxValueLength: limit) else { return nil }
            inputs["claim." + claim.name] = value
        }
        for entry in credential.jwtHeader {
            guard let value = entry.value.constantValue(maxValueLength: limit) else { return nil }
            inputs["header." + entry.name] = value
        }
        return TokenCacheKey(issuer: issuer(for: demand), scope: scope, claims: inputs)
    }

    /// Signs the client assertion (or, for the JWT bearer flow, the grant) for `demand` (also used
    /// by `callout-proxy assertion`). `audience`: the token endpoint, when it was discovered.
    public func assertion(
        for demand: TokenDemand, prepared: Prepared? = nil, audience: String? = nil
    ) throws -> (jwt: String, jti: String) {
        let prepared = try prepared ?? prepare(demand)
        let credential = demand.credential
        guard let material = materials().signingMaterial(credential.signingCertificate) else {
            throw Problem(
                status: 502, code: "token_exchange_failed", title: "Signing key unavailable",
                detail: "certificate '\(credential.signingCertificate)' is not loaded",
                namedCredential: demand.namedCredential?.name)
        }
        let jti = uuid().uuidString.lowercased()
        var request = AssertionRequest(
            clientId: demand.principal.clientId, audience: audience ?? credential.identityProviderURL.absoluteString,
            algorithm: credential.signingAlgorithm, expirationSeconds: Int64(credential.jwtExpirationSeconds),
            now: now(),
            jti: jti,
            // The loader refuses iat, nbf and jti claims (and alg, typ header parameters); a
            // configuration built in code cannot override them either, so the jti returned (and
            // logged) is the one signed.
            claims: prepared.claims.filter { !ExternalCredentialConfig.reservedClaims.contains($0.name) },
            headerEntries: prepared.header.filter {
                !ExternalCredentialConfig.reservedHeaderParameters.contains($0.name)
            })
        request.notBeforeSkewSeconds = Int64(settings().assertionNotBeforeSkewSeconds)
        do {
            return (try JWTAssertion.sign(request, with: material), jti)
        } catch {
            throw Problem(
                status: 502, code: "token_exchange_failed", title: "Assertion could not be signed",
                detail: "external_credential \(credential.name): \(error)",
                namedCredential: demand.namedCredential?.name)
        }
    }

}
