import CalloutCore
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOSSL

/// The data plane's ``TokenSource``: evaluates the credential's formulas for this caller, keys the
/// cache by credential × principal × scope × claims, and on a miss signs a fresh assertion and
/// exchanges it at the identity provider (single-flight through ``TokenCache``).
public final class TokenService: TokenSource {
    public let cache: TokenCache
    public let preparation: TokenPreparation
    /// Token endpoints of credentials configured with `identity_provider_issuer`.
    public let discovery: TokenEndpointDiscovery
    /// The token store replicas share (`[token_store]`), else `nil`.
    public let shared: SharedTokens?
    private let client: TokenEndpointClient
    private let materials: @Sendable () -> CredentialMaterials
    private let settings: @Sendable () -> ProxySettings
    private let logger: Logger

    public init(
        cache: TokenCache, client: TokenEndpointClient, materials: @escaping @Sendable () -> CredentialMaterials,
        settings: @escaping @Sendable () -> ProxySettings, logger: Logger, shared: SharedTokens? = nil,
        now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) },
        uuid: @escaping @Sendable () -> UUID = { UUID() }
    ) {
        self.cache = cache
        self.shared = shared
        self.client = client
        self.materials = materials
        self.settings = settings
        self.logger = logger
        self.preparation = TokenPreparation(materials: materials, settings: settings, now: now, uuid: uuid)
        self.discovery = TokenEndpointDiscovery(
            fetch: { issuer in
                try await client.discoverTokenEndpoint(issuer: issuer, tlsConfiguration: materials().tlsConfiguration())
            }, logger: logger)
    }

    /// Discovers the token endpoints of `config`'s issuers again (at start and after a reload).
    public func discoverTokenEndpoints(_ config: ProxyConfig) {
        discovery.refresh(issuers: config.externalCredentials.compactMap { $0.identityProviderIssuer?.absoluteString })
    }

    /// Where `credential`'s token requests go: its `identity_provider_url`, or the endpoint its
    /// issuer's metadata names.
    public func tokenEndpoint(for credential: ExternalCredentialConfig) async throws -> String {
        guard let issuer = credential.identityProviderIssuer else {
            return credential.identityProviderURL.absoluteString
        }
        return try await discovery.tokenEndpoint(issuer: issuer.absoluteString)
    }

    public func prepare(_ demand: TokenDemand) throws -> TokenPreparation.Prepared { try preparation.prepare(demand) }

    public func token(for demand: TokenDemand) async throws -> IssuedToken {
        let prepared = try prepare(demand)
        let fetchedHere = FetchFlag()
        if demand.credential.prefetch {
            cache.registerPrefetch(prepared.key) { [self] in try await fetchShared(demand, try prepare(demand)) }
        }
        do {
            let token = try await cache.token(for: prepared.key) { [self] in
                fetchedHere.set()
                return try await fetchShared(demand, prepared)
            }
            return issued(token, key: prepared.key, fetched: fetchedHere.value)
        } catch let error as any TokenAcquisitionError {
            throw Self.problem(error, demand: demand)
        }
    }

    public func cachedToken(for demand: TokenDemand) throws -> IssuedToken? {
        let key = try demand.cacheKey ?? preparation.cacheKey(for: demand)
        if demand.credential.prefetch {
            cache.registerPrefetch(key) { [self] in try await fetchShared(demand, try prepare(demand)) }
        }
        do {
            // The fetch is made only for a refresh-ahead; it prepares the assertion's inputs then.
            guard
                let token = try cache.cachedToken(
                    for: key, makeFetch: { { [self] in try await fetchShared(demand, try prepare(demand)) } })
            else { return nil }
            return issued(token, key: key, fetched: false)
        } catch let error as any TokenAcquisitionError {
            throw Self.problem(error, demand: demand)
        }
    }

    private func issued(_ token: AccessToken, key: TokenCacheKey, fetched: Bool) -> IssuedToken {
        IssuedToken(
            accessToken: token.value, tokenType: token.tokenType, tokenID: token.id, fetched: fetched,
            expiresIn: Int(token.lifetime), cacheKey: key, scope: key.scope,
            refreshGuardedUntil: cache.refreshGuardRemaining(token).map { .now + .seconds($0) },
            authorization: token.authorizationHeaderValue)
    }

    public func invalidate(_ token: IssuedToken, for demand: TokenDemand) async {
        guard let key = token.cacheKey ?? (try? prepare(demand))?.key else { return }
        cache.invalidate(key, ifTokenID: token.tokenID)
        // Fleet-wide: the refused token is dropped from the store too, before the refetch reads it.
        await shared?.invalidate(key, accessToken: token.accessToken)
    }

    /// Fetches a new token for `demand` now, replacing the cached one (admin refresh, CLI). It
    /// asks the identity provider itself, never the shared store.
    public func refresh(_ demand: TokenDemand) async throws -> AccessToken {
        let prepared = try prepare(demand)
        do {
            return try await cache.forceRefresh(prepared.key) { [self] in try await fetch(demand, prepared) }
        } catch let error as any TokenAcquisitionError {
            throw Self.problem(error, demand: demand)
        }
    }

    /// The shared store's token when it holds a fresh one, else ``fetch(_:_:)`` (once for the fleet).
    private func fetchShared(_ demand: TokenDemand, _ prepared: TokenPreparation.Prepared) async throws
        -> TokenResponse
    {
        guard let shared else { return try await fetch(demand, prepared) }
        return try await shared.fetch(prepared.key) { [self] in try await fetch(demand, prepared) }
    }

    private func fetch(_ demand: TokenDemand, _ prepared: TokenPreparation.Prepared) async throws -> TokenResponse {
        let credential = demand.credential
        let endpoint = try await tokenEndpoint(for: credential)
        let kind: TokenRequest.Kind
        switch credential.flow {
        case .clientCredentialsJWTAssertion: kind = .clientAssertion
        case .clientCredentialsClientSecret: kind = .clientCredentials(try clientCredential(demand))
        case .jwtBearer: kind = .jwtBearer(try clientCredential(demand))
        }
        let (jwt, jti) =
            credential.flow.signsJWT
            ? try preparation.assertion(for: demand, prepared: prepared, audience: endpoint) : ("", nil)
        // The current materials' TLS: trust roots (`ca_file`) and client certificates changed by
        // a reload apply to the next connection.
        let tls = materials().tlsConfiguration(clientCertificate: credential.identityProviderClientCertificate)
        var request = TokenRequest(
            kind: kind, identityProviderURL: endpoint, clientId: demand.principal.clientId, assertion: jwt,
            scope: prepared.scope, externalCredential: credential.name, principal: demand.principal.name,
            assertionID: jti, tlsConfiguration: tls)
        request.redactions = materials().allClientSecrets
        return try await client.fetchToken(request)
    }

    /// How the client authenticates besides a signed assertion; throws a ``Problem`` when its
    /// secret is not loaded.
    private func clientCredential(_ demand: TokenDemand) throws -> TokenRequest.ClientCredential {
        let credential = demand.credential
        switch credential.clientAuthentication {
        case .basic, .post:
            guard let secret = materials().clientSecret(credential: credential.name, principal: demand.principal.name)
            else {
                throw Problem(
                    status: 502, code: "token_exchange_failed", title: "Client secret unavailable",
                    detail:
                        "external_credential \(credential.name), principal \(demand.principal.name): no client secret is loaded",
                    namedCredential: demand.namedCredential?.name)
            }
            return credential.clientAuthentication == .basic ? .basic(secret) : .post(secret)
        case .tlsClientAuth: return .tlsCertificate
        case .none, .privateKeyJWT: return .none
        }
    }

    static func problem(_ error: any TokenAcquisitionError, demand: TokenDemand) -> Problem {
        let title =
            switch error.code {
            case "token_exchange_failed": "Token exchange failed"
            case "token_endpoint_discovery_failed": "Token endpoint not discovered"
            default: "Identity provider unavailable"
            }
        return Problem(
            status: error.httpStatus, code: error.code, title: title,
            detail: "external_credential \(demand.credential.name), principal \(demand.principal.name): \(error)",
            namedCredential: demand.namedCredential?.name,
            retryAfter: error.retryAfterSeconds.map { Int($0.rounded(.up)) })
    }
}

/// Set once by the fetch closure so the caller can tell a fetched token from a cached one.
private struct FetchFlag: Sendable {
    private let box = NIOLockedValueBox(false)
    func set() { box.withLockedValue { $0 = true } }
    var value: Bool { box.withLockedValue { $0 } }
}
