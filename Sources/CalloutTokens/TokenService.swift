import CalloutCore
import Foundation
import Logging
import NIOSSL

/// The data plane's ``TokenSource``: evaluates the credential's formulas for this caller, keys the
/// cache by credential × principal × scope × claims, and on a miss signs a fresh assertion and
/// exchanges it at the identity provider (single-flight through ``TokenCache``).
public final class TokenService: TokenSource {
    public let cache: TokenCache
    private let client: TokenEndpointClient
    private let materials: @Sendable () -> CredentialMaterials
    private let settings: @Sendable () -> ProxySettings
    private let logger: Logger
    private let now: @Sendable () -> Int64
    private let uuid: @Sendable () -> UUID

    public init(
        cache: TokenCache, client: TokenEndpointClient, materials: @escaping @Sendable () -> CredentialMaterials,
        settings: @escaping @Sendable () -> ProxySettings, logger: Logger,
        now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) },
        uuid: @escaping @Sendable () -> UUID = { UUID() }
    ) {
        self.cache = cache
        self.client = client
        self.materials = materials
        self.settings = settings
        self.logger = logger
        self.now = now
        self.uuid = uuid
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
            credentials: [
                credential.name: [
                    "Name": credential.name, "Label": credential.label, "ClientId": demand.principal.clientId,
                    "PrincipalName": demand.principal.name,
                    "IdentityProviderUrl": credential.identityProviderURL.absoluteString,
                ]
            ],
            allowSecrets: false, namedCredentialName: demand.namedCredential?.name,
            namedCredentialURL: demand.namedCredential?.url.absoluteString, now: now, uuid: uuid,
            maxValueLength: settings().maxFormulaValueLength)
        func evaluate(_ f: Formula, _ location: String) throws -> String {
            do { return try f.evaluate(in: context) } catch {
                throw Problem(
                    status: 400, code: "formula_failed", title: "Formula evaluation failed",
                    detail: "external_credential \(credential.name) \(location): \(error.description)",
                    namedCredential: demand.namedCredential?.name)
            }
        }
        let scope = try credential.scope.map { try evaluate($0, "scope") }.flatMap { $0.isEmpty ? nil : $0 }
        let claims = try credential.jwtClaims.map { (name: $0.name, value: try evaluate($0.value, "jwt_claims.\($0.name)")) }
        let header = try credential.jwtHeader.map { (name: $0.name, value: try evaluate($0.value, "jwt_header.\($0.name)")) }
        // Claims that change on every evaluation (clock, random) do not split the cache.
        var keyClaims: [String: String] = [:]
        for (formula, claim) in zip(credential.jwtClaims.map(\.value), claims) where !Self.isVolatile(formula) {
            keyClaims[claim.name] = claim.value
        }
        for (formula, entry) in zip(credential.jwtHeader.map(\.value), header) where !Self.isVolatile(formula) {
            keyClaims["header." + entry.name] = entry.value
        }
        let key = TokenCacheKey(externalCredential: credential.name, principal: demand.principal.name, scope: scope, claims: keyClaims)
        return Prepared(key: key, scope: scope, claims: claims, header: header)
    }

    /// A formula whose value differs per evaluation: `NOW_EPOCH()` or `UUID()`.
    static func isVolatile(_ formula: Formula) -> Bool {
        guard !formula.isConstant else { return false }
        let upper = formula.source.uppercased()
        return upper.contains("NOW_EPOCH") || upper.contains("UUID")
    }

    public func token(for demand: TokenDemand) async throws -> IssuedToken {
        let prepared = try prepare(demand)
        let fetchedHere = FetchFlag()
        do {
            let token = try await cache.token(for: prepared.key) { [self] in
                fetchedHere.set()
                return try await fetch(demand, prepared)
            }
            return IssuedToken(
                accessToken: token.value, tokenType: token.tokenType, tokenID: token.id, fetched: fetchedHere.value,
                expiresIn: Int(token.lifetime))
        } catch let error as any TokenAcquisitionError {
            throw Self.problem(error, demand: demand)
        }
    }

    public func invalidate(_ token: IssuedToken, for demand: TokenDemand) async {
        guard let prepared = try? prepare(demand) else { return }
        cache.invalidate(prepared.key, ifTokenID: token.tokenID)
    }

    /// Fetches a new token for `demand` now, replacing the cached one (admin refresh, CLI).
    public func refresh(_ demand: TokenDemand) async throws -> AccessToken {
        let prepared = try prepare(demand)
        do {
            return try await cache.forceRefresh(prepared.key) { [self] in try await fetch(demand, prepared) }
        } catch let error as any TokenAcquisitionError {
            throw Self.problem(error, demand: demand)
        }
    }

    /// Signs the client assertion for `demand` (also used by `callout-proxy assertion`).
    public func assertion(for demand: TokenDemand, prepared: Prepared? = nil) throws -> (jwt: String, jti: String) {
        let prepared = try prepared ?? prepare(demand)
        let credential = demand.credential
        guard let material = materials().signingMaterial(credential.signingCertificate) else {
            throw Problem(
                status: 502, code: "token_exchange_failed", title: "Signing key unavailable",
                detail: "certificate '\(credential.signingCertificate)' is not loaded", namedCredential: demand.namedCredential?.name)
        }
        let jti = uuid().uuidString.lowercased()
        let request = AssertionRequest(
            clientId: demand.principal.clientId, audience: credential.identityProviderURL.absoluteString,
            algorithm: credential.signingAlgorithm, expirationSeconds: Int64(credential.jwtExpirationSeconds), now: now(),
            jti: jti, claims: prepared.claims, headerEntries: prepared.header)
        do {
            return (try JWTAssertion.sign(request, with: material), jti)
        } catch {
            throw Problem(
                status: 502, code: "token_exchange_failed", title: "Assertion could not be signed",
                detail: "external_credential \(credential.name): \(error)", namedCredential: demand.namedCredential?.name)
        }
    }

    private func fetch(_ demand: TokenDemand, _ prepared: Prepared) async throws -> TokenResponse {
        let (jwt, jti) = try assertion(for: demand, prepared: prepared)
        var tls: TLSConfiguration? = nil
        if let name = demand.credential.identityProviderClientCertificate, let identity = materials().tlsIdentity(name) {
            var t = TLSConfiguration.makeClientConfiguration()
            if let ca = settings().caFile, let roots = try? NIOSSLCertificate.fromPEMFile(ca) {
                t.additionalTrustRoots = [.certificates(roots)]
            }
            t.certificateChain = identity.certificateChain.map { .certificate($0) }
            t.privateKey = .privateKey(identity.privateKey)
            tls = t
        }
        return try await client.fetchToken(
            TokenRequest(
                identityProviderURL: demand.credential.identityProviderURL.absoluteString, clientId: demand.principal.clientId,
                clientAssertion: jwt, scope: prepared.scope, externalCredential: demand.credential.name,
                principal: demand.principal.name, assertionID: jti, tlsConfiguration: tls))
    }

    static func problem(_ error: any TokenAcquisitionError, demand: TokenDemand) -> Problem {
        let title = error.code == "token_exchange_failed" ? "Token exchange failed" : "Identity provider unavailable"
        return Problem(
            status: error.httpStatus, code: error.code, title: title,
            detail: "external_credential \(demand.credential.name), principal \(demand.principal.name): \(error)",
            namedCredential: demand.namedCredential?.name, retryAfter: error.retryAfterSeconds.map { Int($0.rounded(.up)) })
    }
}

/// Set once by the fetch closure so the caller can tell a fetched token from a cached one.
private final class FetchFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    func set() { lock.withLock { flag = true } }
    var value: Bool { lock.withLock { flag } }
}
