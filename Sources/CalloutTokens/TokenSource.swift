import CalloutCore

/// What the data plane asks for: a token for this principal of this credential, for this caller.
///
/// A value with copy-on-write storage: a callout hands its demand around (plan, cache lookup,
/// refresh) and each copy costs one reference count, not a copy of every configured string.
public struct TokenDemand: Sendable {
    @usableFromInline
    struct Fields: Sendable {
        @usableFromInline var credential: ExternalCredentialConfig
        @usableFromInline var principal: PrincipalConfig
        @usableFromInline var identity: CallerIdentity
        @usableFromInline var namedCredential: NamedCredentialConfig?
        @usableFromInline var cacheKey: TokenCacheKey?
    }
    @usableFromInline
    var storage: CopyOnWrite<Fields>

    @inlinable
    public var credential: ExternalCredentialConfig {
        _read { yield storage.value.credential }
        set { storage.value.credential = newValue }
    }
    @inlinable
    public var principal: PrincipalConfig {
        _read { yield storage.value.principal }
        set { storage.value.principal = newValue }
    }
    @inlinable
    public var identity: CallerIdentity {
        _read { yield storage.value.identity }
        set { storage.value.identity = newValue }
    }
    @inlinable
    public var namedCredential: NamedCredentialConfig? {
        _read { yield storage.value.namedCredential }
        set { storage.value.namedCredential = newValue }
    }
    /// The cache key, when it was made beforehand: for a credential whose scope, claims and
    /// header are constants it is the same for every caller
    /// (``TokenPreparation/constantCacheKey(credential:principal:)``), so the data plane makes it
    /// once per configuration. `nil`: the source works it out.
    @inlinable
    public var cacheKey: TokenCacheKey? {
        _read { yield storage.value.cacheKey }
        set { storage.value.cacheKey = newValue }
    }

    public init(
        credential: ExternalCredentialConfig, principal: PrincipalConfig, identity: CallerIdentity,
        namedCredential: NamedCredentialConfig?, cacheKey: TokenCacheKey? = nil
    ) {
        storage = CopyOnWrite(
            Fields(
                credential: credential, principal: principal, identity: identity, namedCredential: namedCredential,
                cacheKey: cacheKey))
    }
}

/// A token ready to inject. Its description never shows the token.
///
/// A value with copy-on-write storage: it is read on every callout (from the cache, into the
/// exchange, into the request head), and a copy costs one reference count. The `Authorization`
/// value is made once per token, not once per callout.
public struct IssuedToken: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    @usableFromInline
    struct Fields: Sendable {
        @usableFromInline var accessToken: String
        @usableFromInline var tokenType: String
        @usableFromInline var tokenID: UInt64
        @usableFromInline var fetched: Bool
        @usableFromInline var expiresIn: Int
        @usableFromInline var cacheKey: TokenCacheKey?
        @usableFromInline var scope: String?
        @usableFromInline var refreshGuardedUntil: ContinuousClock.Instant?
        /// `<type> <token>`, remade when either part is set.
        @usableFromInline var authorization: String
    }
    @usableFromInline
    var storage: CopyOnWrite<Fields>

    @inlinable
    public var accessToken: String {
        _read { yield storage.value.accessToken }
        set {
            storage.value.accessToken = newValue
            storage.value.authorization = AccessToken.authorizationHeaderValue(
                tokenType: storage.value.tokenType, value: newValue)
        }
    }
    /// As the identity provider gave it (`Bearer` normalised).
    @inlinable
    public var tokenType: String {
        _read { yield storage.value.tokenType }
        set {
            storage.value.tokenType = newValue
            storage.value.authorization = AccessToken.authorizationHeaderValue(
                tokenType: newValue, value: storage.value.accessToken)
        }
    }
    /// Identifies this token in the cache, for compare-and-invalidate after a refresh status.
    @inlinable
    public var tokenID: UInt64 {
        get { storage.value.tokenID }
        set { storage.value.tokenID = newValue }
    }
    /// False when it came from the cache.
    @inlinable
    public var fetched: Bool {
        get { storage.value.fetched }
        set { storage.value.fetched = newValue }
    }
    /// Seconds until the cache stops serving it.
    @inlinable
    public var expiresIn: Int {
        get { storage.value.expiresIn }
        set { storage.value.expiresIn = newValue }
    }
    /// The cache entry it came from, so an invalidation need not evaluate the formulas again.
    @inlinable
    public var cacheKey: TokenCacheKey? {
        _read { yield storage.value.cacheKey }
        set { storage.value.cacheKey = newValue }
    }
    /// The evaluated scope it was requested with (what `$Credential.<Name>.Scope` reads).
    @inlinable
    public var scope: String? {
        _read { yield storage.value.scope }
        set { storage.value.scope = newValue }
    }
    /// Until this instant a refresh status on this token goes back to the caller without another
    /// fetch (the refresh storm guard, `min_token_refresh_interval_seconds`); `nil`: never.
    @inlinable
    public var refreshGuardedUntil: ContinuousClock.Instant? {
        get { storage.value.refreshGuardedUntil }
        set { storage.value.refreshGuardedUntil = newValue }
    }

    /// `authorization`: the `Authorization` value when it was already made
    /// (``AccessToken/authorizationHeaderValue``); it must be `"<tokenType> <accessToken>"`.
    public init(
        accessToken: String, tokenType: String, tokenID: UInt64, fetched: Bool, expiresIn: Int,
        cacheKey: TokenCacheKey? = nil, scope: String? = nil, refreshGuardedUntil: ContinuousClock.Instant? = nil,
        authorization: String? = nil
    ) {
        storage = CopyOnWrite(
            Fields(
                accessToken: accessToken, tokenType: tokenType, tokenID: tokenID, fetched: fetched,
                expiresIn: expiresIn, cacheKey: cacheKey, scope: scope, refreshGuardedUntil: refreshGuardedUntil,
                authorization: authorization
                    ?? AccessToken.authorizationHeaderValue(tokenType: tokenType, value: accessToken)))
    }

    /// Whether a refresh status on this token must go back to the caller without a refresh.
    public func isRefreshGuarded(at now: ContinuousClock.Instant = .now) -> Bool {
        refreshGuardedUntil.map { now < $0 } ?? false
    }

    /// `<type> <token>`, the `Authorization` value.
    public var authorizationValue: String { storage.value.authorization }

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
