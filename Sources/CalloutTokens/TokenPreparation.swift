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
        let context = FormulaContext(
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
        let claims = try credential.jwtClaims.map {
            (name: $0.name, value: try evaluate($0.value, "jwt_claims.\($0.name)"))
        }
        let header = try credential.jwtHeader.map {
            (name: $0.name, value: try evaluate($0.value, "jwt_header.\($0.name)"))
        }
        // Claims that change on every evaluation (clock, random) do not split the cache.
        var keyClaims: [String: String] = [:]
        for (formula, claim) in zip(credential.jwtClaims.map(\.value), claims) where !Self.isVolatile(formula) {
            keyClaims[claim.name] = claim.value
        }
        for (formula, entry) in zip(credential.jwtHeader.map(\.value), header) where !Self.isVolatile(formula) {
            keyClaims["header." + entry.name] = entry.value
        }
        let key = TokenCacheKey(
            externalCredential: credential.name, principal: demand.principal.name, scope: scope, claims: keyClaims)
        return Prepared(key: key, scope: scope, claims: claims, header: header)
    }

    /// The cache key alone, for the data plane's lookup on every callout. When scope, claims and
    /// header values are constants (the common case) no formula context is built; otherwise
    /// this is ``prepare(_:)``'s key. Throws a ``Problem``.
    public func cacheKey(for demand: TokenDemand) throws -> TokenCacheKey {
        let credential = demand.credential
        let limit = settings().maxFormulaValueLength
        var scope: String? = nil
        if let formula = credential.scope {
            guard let value = formula.constantValue(maxValueLength: limit) else { return try prepare(demand).key }
            scope = value.isEmpty ? nil : value
        }
        var claims: [String: String] = [:]
        for claim in credential.jwtClaims {
            guard let value = claim.value.constantValue(maxValueLength: limit) else { return try prepare(demand).key }
            claims[claim.name] = value
        }
        for entry in credential.jwtHeader {
            guard let value = entry.value.constantValue(maxValueLength: limit) else { return try prepare(demand).key }
            claims["header." + entry.name] = value
        }
        return TokenCacheKey(
            externalCredential: credential.name, principal: demand.principal.name, scope: scope, claims: claims)
    }

    /// A formula whose value differs per evaluation: `NOW_EPOCH()` or `UUID()`.
    static func isVolatile(_ formula: Formula) -> Bool {
        guard !formula.isConstant else { return false }
        let upper = formula.source.uppercased()
        return upper.contains("NOW_EPOCH") || upper.contains("UUID")
    }

    /// Signs the client assertion for `demand` (also used by `callout-proxy assertion`).
    public func assertion(for demand: TokenDemand, prepared: Prepared? = nil) throws -> (jwt: String, jti: String) {
        let prepared = try prepared ?? prepare(demand)
        let credential = demand.credential
        guard let material = materials().signingMaterial(credential.signingCertificate) else {
            throw Problem(
                status: 502, code: "token_exchange_failed", title: "Signing key unavailable",
                detail: "certificate '\(credential.signingCertificate)' is not loaded",
                namedCredential: demand.namedCredential?.name)
        }
        let jti = uuid().uuidString.lowercased()
        let request = AssertionRequest(
            clientId: demand.principal.clientId, audience: credential.identityProviderURL.absoluteString,
            algorithm: credential.signingAlgorithm, expirationSeconds: Int64(credential.jwtExpirationSeconds),
            now: now(),
            jti: jti, claims: prepared.claims, headerEntries: prepared.header)
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
