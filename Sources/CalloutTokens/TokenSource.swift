import CalloutCore

/// What the data plane asks for: a token for this principal of this credential, for this caller.
public struct TokenDemand: Sendable {
    public var credential: ExternalCredentialConfig
    public var principal: PrincipalConfig
    public var identity: CallerIdentity
    public var namedCredential: NamedCredentialConfig?
    /// The cache key, when it was made beforehand: for a credential whose scope, claims and
    /// header are constants it is the same for every caller
    /// (``TokenPreparation/constantCacheKey(credential:principal:)``), so the data plane makes it
    /// once per configuration. `nil`: the source works it out.
    public var cacheKey: TokenCacheKey?

    public init(
        credential: ExternalCredentialConfig, principal: PrincipalConfig, identity: CallerIdentity,
        namedCredential: NamedCredentialConfig?, cacheKey: TokenCacheKey? = nil
    ) {
        self.credential = credential
        self.principal = principal
        self.identity = identity
        self.namedCredential = namedCredential
        self.cacheKey = cacheKey
    }
}

/// A token ready to inject. Its description never shows the token.
public struct IssuedToken: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public var accessToken: String
    /// As the identity provider gave it (`Bearer` normalised).
    public var tokenType: String
    /// Identifies this token in the cache, for compare-and-invalidate after a refresh status.
    public var tokenID: UInt64
    /// False when it came from the cache.
    public var fetched: Bool
    /// Seconds until the cache stops serving it.
    public var expiresIn: Int
    /// The cache entry it came from, so an invalidation need not evaluate the formulas again.
    public var cacheKey: TokenCacheKey?
    /// The evaluated scope it was requested with (what `$Credential.<Name>.Scope` reads).
    public var scope: String?
    /// Until this instant a refresh status on this token goes back to the caller without another
    /// fetch (the refresh storm guard, `min_token_refresh_interval_seconds`); `nil`: never.
    public var refreshGuardedUntil: ContinuousClock.Instant?

    public init(
        accessToken: String, tokenType: String, tokenID: UInt64, fetched: Bool, expiresIn: Int,
        cacheKey: TokenCacheKey? = nil, scope: String? = nil, refreshGuardedUntil: ContinuousClock.Instant? = nil
    ) {
        self.cacheKey = cacheKey
        self.scope = scope
        self.refreshGuardedUntil = refreshGuardedUntil
        self.accessToken = accessToken
        self.tokenType = tokenType
        self.tokenID = tokenID
        self.fetched = fetched
        self.expiresIn = expiresIn
    }

    /// Whether a refresh status on this token must go back to the caller without a refresh.
    public func isRefreshGuarded(at now: ContinuousClock.Instant = .now) -> Bool {
        refreshGuardedUntil.map { now < $0 } ?? false
    }

    /// `<type> <token>`, the `Authorization` value.
    public var authorizationValue: String { "\(tokenType) \(accessToken)" }

    public var description: String {
        "IssuedToken(type: \(tokenType), id: \(tokenID), expires in \(expiresIn) s, <redacted>)"
    }
    public var debugDescription: String { description }
}

/// Gives the data plane tokens: from the cache or fetched, single-flight.
public protocol TokenSource: Sendable {
    /// Throws a ``Problem`` (`token_exchange_failed`, `identity_provider_unavailable`, `formula_failed`).
    func token(for demand: TokenDemand) async throws -> IssuedToken
    /// The cached token for `demand` without suspending, or `nil` when ``token(for:)`` must be
    /// asked (a miss, or a fetch in flight). Throws as ``token(for:)`` does.
    func cachedToken(for demand: TokenDemand) throws -> IssuedToken?
    /// Drops `token` from the cache if it is still the cached one (a burst of 401s refreshes once).
    func invalidate(_ token: IssuedToken, for demand: TokenDemand) async
}

extension TokenSource {
    /// Sources without a synchronous cache always go through ``token(for:)``.
    public func cachedToken(for demand: TokenDemand) throws -> IssuedToken? { nil }
}
