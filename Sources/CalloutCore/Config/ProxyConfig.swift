import Foundation

/// The whole of a validated `proxy.conf`.
///
/// Built by ``ConfigLoader``; every value here has passed validation, so the server can use it
/// without re-checking.
public struct ProxyConfig: Sendable {
    /// Copy-on-write storage: a configuration is handed around whole (snapshots, routing, the
    /// token service), and a copy costs one reference count, not a retain of every string in it.
    @usableFromInline
    struct Fields: Sendable {
        @usableFromInline var proxy: ProxySettings
        @usableFromInline var callers: [CallerConfig]
        @usableFromInline var certificates: [CertificateConfig]
        @usableFromInline var externalCredentials: [ExternalCredentialConfig]
        @usableFromInline var namedCredentials: [NamedCredentialConfig]
        @usableFromInline var tokenStore: TokenStoreConfig? = nil
        @usableFromInline var sourceFile: String
        @usableFromInline var sourceLines: [String: Int] = [:]
        @usableFromInline var warnings: [ConfigIssue] = []
        /// Kept in step with the two lists by their accessors.
        @usableFromInline var externalIndex = NameIndex([])
        @usableFromInline var namedIndex = NameIndex([])
    }
    @usableFromInline
    var storage: CopyOnWrite<Fields>

    @inlinable
    public var proxy: ProxySettings {
        _read { yield storage.value.proxy }
        _modify { yield &storage.value.proxy }
    }
    @inlinable
    public var callers: [CallerConfig] {
        _read { yield storage.value.callers }
        _modify { yield &storage.value.callers }
    }
    @inlinable
    public var certificates: [CertificateConfig] {
        _read { yield storage.value.certificates }
        _modify { yield &storage.value.certificates }
    }
    @inlinable
    public var externalCredentials: [ExternalCredentialConfig] {
        _read { yield storage.value.externalCredentials }
        _modify {
            yield &storage.value.externalCredentials
            storage.value.externalIndex = NameIndex(storage.value.externalCredentials.lazy.map(\.name))
        }
    }
    @inlinable
    public var namedCredentials: [NamedCredentialConfig] {
        _read { yield storage.value.namedCredentials }
        _modify {
            yield &storage.value.namedCredentials
            storage.value.namedIndex = NameIndex(storage.value.namedCredentials.lazy.map(\.name))
        }
    }
    /// `[token_store]`: tokens shared by replicas through PostgreSQL; `nil`: this process only.
    @inlinable
    public var tokenStore: TokenStoreConfig? {
        _read { yield storage.value.tokenStore }
        _modify { yield &storage.value.tokenStore }
    }
    /// The file this configuration was read from ("<memory>" for text loaded directly).
    @inlinable
    public var sourceFile: String {
        _read { yield storage.value.sourceFile }
        _modify { yield &storage.value.sourceFile }
    }
    /// Key path -> line, for problems found after loading (key files, reload diagnostics).
    @inlinable
    var sourceLines: [String: Int] {
        _read { yield storage.value.sourceLines }
        _modify { yield &storage.value.sourceLines }
    }
    /// Findings that did not stop loading (e.g. a listed 401), for `check` and the server log.
    @inlinable
    public var warnings: [ConfigIssue] {
        _read { yield storage.value.warnings }
        _modify { yield &storage.value.warnings }
    }

    public init(
        proxy: ProxySettings = ProxySettings(),
        callers: [CallerConfig] = [],
        certificates: [CertificateConfig] = [],
        externalCredentials: [ExternalCredentialConfig] = [],
        namedCredentials: [NamedCredentialConfig] = [],
        sourceFile: String = "<memory>"
    ) {
        storage = CopyOnWrite(
            Fields(
                proxy: proxy, callers: callers, certificates: certificates, externalCredentials: externalCredentials,
                namedCredentials: namedCredentials, sourceFile: sourceFile,
                externalIndex: NameIndex(externalCredentials.lazy.map(\.name)),
                namedIndex: NameIndex(namedCredentials.lazy.map(\.name))))
    }

    /// A problem with the value at `keyPath`, located in the file when the key is known.
    public func issue(_ keyPath: String, _ message: String) -> ConfigIssue {
        var candidate = keyPath
        var line = sourceLines[candidate]
        while line == nil, let cut = candidate.lastIndex(where: { $0 == "." || $0 == "[" }) {
            candidate = String(candidate[..<cut])
            line = sourceLines[candidate]
        }
        return ConfigIssue(file: sourceFile, line: line, keyPath: keyPath, message: message)
    }

    /// Named credential by alias, case-insensitively (aliases travel in host names).
    public func namedCredential(_ alias: some StringProtocol) -> NamedCredentialConfig? {
        namedCredential(String(alias))
    }

    /// The data plane's lookup, once per request: by a name index, so its cost does not grow
    /// with the number of named credentials.
    public func namedCredential(_ alias: String) -> NamedCredentialConfig? {
        storage.value.namedIndex.position(of: alias).map { namedCredentials[$0] }
    }

    /// The configured spelling of a named credential's name, without copying the credential.
    public func namedCredentialName(_ alias: String) -> String? {
        storage.value.namedIndex.position(of: alias).map { namedCredentials[$0].name }
    }

    public func externalCredential(_ name: some StringProtocol) -> ExternalCredentialConfig? {
        externalCredential(String(name))
    }

    public func externalCredential(_ name: String) -> ExternalCredentialConfig? {
        storage.value.externalIndex.position(of: name).map { externalCredentials[$0] }
    }

    public func certificate(_ name: some StringProtocol) -> CertificateConfig? {
        certificates.first { $0.name.caseInsensitiveEquals(name) }
    }
}

/// `[proxy]`: listeners, caller trust and the named limits.
public struct ProxySettings: Sendable, Equatable {
    public var listen: HostPort = HostPort(host: "127.0.0.1", port: 8080)
    public var adminListen: HostPort? = HostPort(host: "127.0.0.1", port: 9901)
    public var trustedCallers: [CIDR] = [CIDR("127.0.0.1/32")!, CIDR("::1/128")!]
    public var permissionSetsHeader: String = "X-Callout-Permission-Sets"
    public var profileHeader: String = "X-Callout-Profile"
    public var userHeaderPrefix: String = "X-Callout-User-"
    public var principalHeader: String = "X-Callout-Principal"
    /// Files of extra PEM trust roots for the identity providers and upstreams, added to the
    /// system's (`ca_file`: one path or a list).
    public var caFiles: [String] = []
    /// Callout budget until the upstream's response head, token fetch included; then the longest
    /// silence while the response body streams: 1...120.
    public var requestTimeoutSeconds: Int = 10
    /// Connect timeout for upstreams and identity providers.
    public var connectTimeoutSeconds: Int = 5
    /// Request line plus header block, in bytes; larger → 431.
    public var maxHeaderBytes: Int = 32 * 1024
    /// Request body, in bytes; larger → 413.
    public var maxRequestBodyBytes: Int = 1024 * 1024 * 1024
    /// Bodies up to this size are kept so the request can be replayed after a token refresh.
    public var retryBodyBufferBytes: Int = 1024 * 1024
    /// How long a client may take to send a complete request head.
    public var headerReadTimeoutSeconds: Int = 10
    /// A request body must arrive within this many seconds of its head, plus one second for every
    /// `minRequestBodyRateBytesPerSecond` bytes received (a body trickled slowly is cut off).
    public var requestBodyTimeoutSeconds: Int = 30
    /// See ``requestBodyTimeoutSeconds``; 0 turns the body deadline off (the idle limit still applies).
    public var minRequestBodyRateBytesPerSecond: Int = 1024
    /// How long a keep-alive connection may sit idle between requests.
    public var idleTimeoutSeconds: Int = 60
    /// After an answer sent before the request was read to its end (400, 413, 431), how long the
    /// proxy goes on reading and dropping what the client sends, so it can read the answer;
    /// 0 closes at once.
    public var lingeringCloseSeconds: Int = 5
    /// See ``lingeringCloseSeconds``: the most bytes read and dropped before closing.
    public var lingeringCloseMaxBytes: Int = 1 << 20
    /// Keep-alive HTTP/1.1 connections to one upstream (shared out between event-loop threads) or
    /// identity provider host.
    public var upstreamMaxConnectionsPerHost: Int = 256
    /// How long an upstream connection may sit idle in the pool (shortened to a second below an
    /// upstream's own `Keep-Alive: timeout`).
    public var upstreamIdleTimeoutSeconds: Int = 60
    /// Open client connections at once; further connections are closed at accept.
    public var maxConnections: Int = 10_000
    /// Token cache entries (external credential × principal × scope × claims), LRU-evicted.
    public var maxCachedTokens: Int = 10_000
    /// Share of a token's lifetime after which the next use refreshes it in the background.
    public var tokenRefreshAheadRatio: Double = 0.8
    /// A token is never served this close to its expiry (reduced for short-lived tokens).
    public var tokenExpirySkewSeconds: Int = 10
    /// A token fetched less than this long ago that meets a refresh status again is not
    /// refreshed: the answer goes back to the caller (0 turns the guard off).
    public var minTokenRefreshIntervalSeconds: Int = 10
    /// `nbf` in assertions is set this many seconds in the past, for identity providers whose
    /// clock runs behind.
    public var assertionNotBeforeSkewSeconds: Int = 0
    /// Lifetime assumed when the identity provider sends no `expires_in` and the token is opaque.
    public var defaultTokenLifetimeSeconds: Int = 300
    /// Longest evaluated formula value, in characters.
    public var maxFormulaValueLength: Int = 1300
    /// In-flight callouts get this long to finish on SIGTERM.
    public var shutdownGraceSeconds: Int = 15
    /// Permit `http://` identity provider and endpoint URLs. For local testing only.
    public var allowInsecureHTTP: Bool = false
    /// When set, admin endpoints require `Authorization: Bearer <token>` whose SHA-256 is this.
    public var adminTokenSHA256: [UInt8]?
    /// `/readyz` waits until every external credential has fetched a token once.
    public var readyRequiresTokens: Bool = false
    /// Host names besides loopback, the listen address and aliases that callers may send in
    /// `Host` (e.g. a service name used with the path form).
    public var allowedHosts: [String] = []
    /// Open admin connections at once; further ones are closed at accept.
    public var adminMaxConnections: Int = 16
    /// Where the access line of each callout goes.
    public var accessLog: AccessLogDestination = .standardError

    public init() {}
}

/// `access_log`: `"stderr"` (with the process log, at `info`), `"off"`, or a file path.
public enum AccessLogDestination: Sendable, Hashable {
    case standardError
    case off
    /// An absolute path (a relative one is resolved beside the configuration file).
    case file(String)
}

/// `[[caller]]`: a client that authenticates to the proxy with `Proxy-Authorization`.
public struct CallerConfig: Sendable, Equatable {
    public var name: String
    /// SHA-256 of the bearer token, or of `user:password` for Basic.
    public var tokenSHA256: [UInt8]
    public var permissionSets: [String]
    public var profile: String?
    public var user: [String: String]
    /// Whether this caller's identity headers are believed (they are ignored otherwise).
    public var trustIdentityHeaders: Bool

    public init(
        name: String, tokenSHA256: [UInt8], permissionSets: [String] = [], profile: String? = nil,
        user: [String: String] = [:], trustIdentityHeaders: Bool = false
    ) {
        self.name = name
        self.tokenSHA256 = tokenSHA256
        self.permissionSets = permissionSets
        self.profile = profile
        self.user = user
        self.trustIdentityHeaders = trustIdentityHeaders
    }
}

/// `[[certificate]]`: a key pair from "Certificate and Key Management".
public struct CertificateConfig: Sendable, Equatable {
    public var name: String
    /// Absolute, or relative to the configuration file's folder.
    public var privateKeyFile: String
    public var certificateFile: String?
    /// Environment variable holding the passphrase of an encrypted PKCS#8 key.
    public var privateKeyPassphraseEnv: String?

    public init(
        name: String, privateKeyFile: String, certificateFile: String? = nil,
        privateKeyPassphraseEnv: String? = nil
    ) {
        self.name = name
        self.privateKeyFile = privateKeyFile
        self.certificateFile = certificateFile
        self.privateKeyPassphraseEnv = privateKeyPassphraseEnv
    }
}

/// One `[[...custom_header]]` entry.
public struct CustomHeaderConfig: Sendable, Equatable {
    public var name: String
    public var value: Formula
    public var sequenceNumber: Int

    public init(name: String, value: Formula, sequenceNumber: Int) {
        self.name = name
        self.value = value
        self.sequenceNumber = sequenceNumber
    }
}

/// One identity an external credential can act as.
public struct PrincipalConfig: Sendable, Equatable {
    public var name: String
    public var sequenceNumber: Int
    public var clientId: String
    public var permissionSets: [String]
    public var profiles: [String]
    /// Where the client secret is read from (client authentication `basic` or `post`).
    public var clientSecret: ClientSecretSource?

    public init(
        name: String, sequenceNumber: Int, clientId: String, permissionSets: [String] = [],
        profiles: [String] = [], clientSecret: ClientSecretSource? = nil
    ) {
        self.name = name
        self.sequenceNumber = sequenceNumber
        self.clientId = clientId
        self.permissionSets = permissionSets
        self.profiles = profiles
        self.clientSecret = clientSecret
    }
}

/// `[[external_credential]]`: how to authenticate (OAuth 2.0: client credentials with a JWT
/// assertion, client credentials with a client secret or TLS client certificate, or the JWT
/// bearer grant).
public struct ExternalCredentialConfig: Sendable, Equatable {
    /// The fields, in copy-on-write storage: a configured value is copied into every callout's
    /// route and token demand, and a copy costs one reference count, not one per string in it.
    @usableFromInline
    struct Fields: Sendable {
        @usableFromInline var name: String
        @usableFromInline var label: String
        @usableFromInline var identityProviderURL: URL
        @usableFromInline var identityProviderIssuer: URL?
        @usableFromInline var flow: AuthenticationFlow = .clientCredentialsJWTAssertion
        @usableFromInline var clientAuthentication: ClientAuthentication = .privateKeyJWT
        @usableFromInline var signingCertificate: String
        @usableFromInline var signingAlgorithm: SigningAlgorithm
        @usableFromInline var scope: Formula?
        @usableFromInline var additionalRefreshStatusCodes: [Int]
        @usableFromInline var jwtExpirationSeconds: Int
        @usableFromInline var jwtClaims: [(name: String, value: Formula)]
        @usableFromInline var jwtHeader: [(name: String, value: Formula)]
        @usableFromInline var customHeaders: [CustomHeaderConfig]
        @usableFromInline var principals: [PrincipalConfig]
        @usableFromInline var identityProviderClientCertificate: String?
        @usableFromInline var prefetch: Bool = false
    }

    @usableFromInline
    var storage: CopyOnWrite<Fields>

    @inlinable
    public var name: String {
        _read { yield storage.value.name }
        _modify { yield &storage.value.name }
    }
    @inlinable
    public var label: String {
        _read { yield storage.value.label }
        _modify { yield &storage.value.label }
    }
    /// The token endpoint. With ``identityProviderIssuer`` set it holds the issuer too: the token
    /// endpoint is then discovered from the issuer's metadata, and this URL is never posted to.
    @inlinable
    public var identityProviderURL: URL {
        _read { yield storage.value.identityProviderURL }
        _modify { yield &storage.value.identityProviderURL }
    }
    /// `identity_provider_issuer`: the token endpoint comes from this issuer's metadata (RFC 8414).
    @inlinable
    public var identityProviderIssuer: URL? {
        _read { yield storage.value.identityProviderIssuer }
        _modify { yield &storage.value.identityProviderIssuer }
    }
    /// `authentication_flow`.
    @inlinable
    public var flow: AuthenticationFlow {
        _read { yield storage.value.flow }
        _modify { yield &storage.value.flow }
    }
    /// `client_authentication`: how the client authenticates at the token endpoint.
    @inlinable
    public var clientAuthentication: ClientAuthentication {
        _read { yield storage.value.clientAuthentication }
        _modify { yield &storage.value.clientAuthentication }
    }
    /// The `[[certificate]]` that signs assertions; empty for the client-secret flow, which signs none.
    @inlinable
    public var signingCertificate: String {
        _read { yield storage.value.signingCertificate }
        _modify { yield &storage.value.signingCertificate }
    }
    @inlinable
    public var signingAlgorithm: SigningAlgorithm {
        _read { yield storage.value.signingAlgorithm }
        _modify { yield &storage.value.signingAlgorithm }
    }
    @inlinable
    public var scope: Formula? {
        _read { yield storage.value.scope }
        _modify { yield &storage.value.scope }
    }
    /// Besides 401, which always refreshes.
    @inlinable
    public var additionalRefreshStatusCodes: [Int] {
        _read { yield storage.value.additionalRefreshStatusCodes }
        _modify { yield &storage.value.additionalRefreshStatusCodes }
    }
    @inlinable
    public var jwtExpirationSeconds: Int {
        _read { yield storage.value.jwtExpirationSeconds }
        _modify { yield &storage.value.jwtExpirationSeconds }
    }
    /// Body claims in file order: override the defaults or add custom claims.
    @inlinable
    public var jwtClaims: [(name: String, value: Formula)] {
        _read { yield storage.value.jwtClaims }
        _modify { yield &storage.value.jwtClaims }
    }
    /// Header parameters in file order (`kid`, ...).
    @inlinable
    public var jwtHeader: [(name: String, value: Formula)] {
        _read { yield storage.value.jwtHeader }
        _modify { yield &storage.value.jwtHeader }
    }
    @inlinable
    public var customHeaders: [CustomHeaderConfig] {
        _read { yield storage.value.customHeaders }
        _modify { yield &storage.value.customHeaders }
    }
    /// Sorted by sequence number (lowest first), whatever the file order.
    @inlinable
    public var principals: [PrincipalConfig] {
        _read { yield storage.value.principals }
        _modify { yield &storage.value.principals }
    }
    /// Optional `[[certificate]]` presented as a TLS client certificate to the identity provider.
    @inlinable
    public var identityProviderClientCertificate: String? {
        _read { yield storage.value.identityProviderClientCertificate }
        _modify { yield &storage.value.identityProviderClientCertificate }
    }
    /// Refresh tokens of recently used keys before they become unusable, even without traffic.
    @inlinable
    public var prefetch: Bool {
        _read { yield storage.value.prefetch }
        _modify { yield &storage.value.prefetch }
    }

    /// The default authentication flow: OAuth 2.0 client credentials with a JWT assertion.
    public static let authenticationFlow = AuthenticationFlow.clientCredentialsJWTAssertion.rawValue
    /// Claims the proxy sets in every assertion; a configuration cannot override them.
    public static let reservedClaims: Set<String> = ["iat", "nbf", "jti"]
    /// Header parameters the proxy sets in every assertion.
    public static let reservedHeaderParameters: Set<String> = ["alg", "typ"]

    public init(
        name: String, label: String? = nil, identityProviderURL: URL, signingCertificate: String,
        signingAlgorithm: SigningAlgorithm = .rs256, scope: Formula? = nil,
        additionalRefreshStatusCodes: [Int] = [], jwtExpirationSeconds: Int = 120,
        jwtClaims: [(name: String, value: Formula)] = [],
        jwtHeader: [(name: String, value: Formula)] = [],
        customHeaders: [CustomHeaderConfig] = [], principals: [PrincipalConfig] = [],
        identityProviderClientCertificate: String? = nil, prefetch: Bool = false
    ) {
        storage = CopyOnWrite(
            Fields(
                name: name, label: label ?? name, identityProviderURL: identityProviderURL,
                signingCertificate: signingCertificate, signingAlgorithm: signingAlgorithm, scope: scope,
                additionalRefreshStatusCodes: additionalRefreshStatusCodes, jwtExpirationSeconds: jwtExpirationSeconds,
                jwtClaims: jwtClaims, jwtHeader: jwtHeader, customHeaders: customHeaders,
                principals: principals.sorted { $0.sequenceNumber < $1.sequenceNumber },
                identityProviderClientCertificate: identityProviderClientCertificate, prefetch: prefetch))
    }

    /// What `$Credential.<Name>.<Parameter>` reads for `principal`. The token parameters
    /// (`AccessToken`, `AuthorizationHeaderValue`, `TokenType`) are present only with a token.
    /// `Scope` is `scope` (the evaluated scope, for a per-caller scope formula), else the
    /// scope's constant value, else empty.
    public func formulaParameters(
        principal: PrincipalConfig, accessToken: String? = nil, tokenType: String = "Bearer", scope: String? = nil
    ) -> [String: String] {
        var parameters = [
            "Name": name, "Label": label, "ClientId": principal.clientId, "PrincipalName": principal.name,
            "IdentityProviderUrl": identityProviderURL.absoluteString,
            "Scope": scope ?? self.scope?.constantValue(maxValueLength: .max) ?? "",
        ]
        if let accessToken {
            parameters["AccessToken"] = accessToken
            parameters["AuthorizationHeaderValue"] = "\(tokenType) \(accessToken)"
            parameters["TokenType"] = tokenType
        }
        return parameters
    }

    /// 401 plus the additional codes: the statuses that trigger a refresh and one retry.
    public func isRefreshStatus(_ status: Int) -> Bool {
        status == 401 || additionalRefreshStatusCodes.contains(status)
    }

    public func principal(_ name: some StringProtocol) -> PrincipalConfig? {
        principals.first { $0.name.caseInsensitiveEquals(name) }
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.name == rhs.name && lhs.label == rhs.label
            && lhs.identityProviderURL == rhs.identityProviderURL
            && lhs.signingCertificate == rhs.signingCertificate
            && lhs.signingAlgorithm == rhs.signingAlgorithm && lhs.scope == rhs.scope
            && lhs.additionalRefreshStatusCodes == rhs.additionalRefreshStatusCodes
            && lhs.jwtExpirationSeconds == rhs.jwtExpirationSeconds
            && lhs.jwtClaims.elementsEqual(rhs.jwtClaims, by: { $0 == $1 })
            && lhs.jwtHeader.elementsEqual(rhs.jwtHeader, by: { $0 == $1 })
            && lhs.customHeaders == rhs.customHeaders && lhs.principals == rhs.principals
            && lhs.identityProviderClientCertificate == rhs.identityProviderClientCertificate
            && lhs.prefetch == rhs.prefetch && lhs.identityProviderIssuer == rhs.identityProviderIssuer
            && lhs.flow == rhs.flow && lhs.clientAuthentication == rhs.clientAuthentication
    }

    /// The token endpoint as configured, or `issuer <URL>` when it is discovered (for summaries).
    public var tokenEndpointDescription: String {
        identityProviderIssuer.map { "issuer \($0.absoluteString)" } ?? identityProviderURL.absoluteString
    }
}

/// `[[named_credential]]`: an alias for an HTTPS endpoint and the credential that authenticates it.
public struct NamedCredentialConfig: Sendable, Equatable {
    /// The fields, in copy-on-write storage: a configured value is copied into every callout's
    /// route and token demand, and a copy costs one reference count, not one per string in it.
    @usableFromInline
    struct Fields: Sendable, Equatable {
        @usableFromInline var name: String
        @usableFromInline var label: String
        @usableFromInline var url: URL
        @usableFromInline var externalCredential: String
        @usableFromInline var enabled: Bool
        @usableFromInline var generateAuthorizationHeader: Bool
        @usableFromInline var allowFormulasInHeaders: Bool
        @usableFromInline var allowFormulasInBody: Bool
        @usableFromInline var clientCertificate: String?
        @usableFromInline var customHeaders: [CustomHeaderConfig]
    }

    @usableFromInline
    var storage: CopyOnWrite<Fields>

    @inlinable
    public var name: String {
        _read { yield storage.value.name }
        _modify { yield &storage.value.name }
    }
    @inlinable
    public var label: String {
        _read { yield storage.value.label }
        _modify { yield &storage.value.label }
    }
    /// Scheme, host, optional port and base path; never a query or fragment.
    @inlinable
    public var url: URL {
        _read { yield storage.value.url }
        _modify { yield &storage.value.url }
    }
    @inlinable
    public var externalCredential: String {
        _read { yield storage.value.externalCredential }
        _modify { yield &storage.value.externalCredential }
    }
    @inlinable
    public var enabled: Bool {
        _read { yield storage.value.enabled }
        _modify { yield &storage.value.enabled }
    }
    @inlinable
    public var generateAuthorizationHeader: Bool {
        _read { yield storage.value.generateAuthorizationHeader }
        _modify { yield &storage.value.generateAuthorizationHeader }
    }
    @inlinable
    public var allowFormulasInHeaders: Bool {
        _read { yield storage.value.allowFormulasInHeaders }
        _modify { yield &storage.value.allowFormulasInHeaders }
    }
    @inlinable
    public var allowFormulasInBody: Bool {
        _read { yield storage.value.allowFormulasInBody }
        _modify { yield &storage.value.allowFormulasInBody }
    }
    /// Optional `[[certificate]]` presented as a TLS client certificate to the endpoint.
    @inlinable
    public var clientCertificate: String? {
        _read { yield storage.value.clientCertificate }
        _modify { yield &storage.value.clientCertificate }
    }
    @inlinable
    public var customHeaders: [CustomHeaderConfig] {
        _read { yield storage.value.customHeaders }
        _modify { yield &storage.value.customHeaders }
    }

    @inlinable
    public static func == (a: Self, b: Self) -> Bool {
        a.storage.isIdentical(to: b.storage) || a.storage.value == b.storage.value
    }

    public init(
        name: String, label: String? = nil, url: URL, externalCredential: String,
        enabled: Bool = true, generateAuthorizationHeader: Bool = true,
        allowFormulasInHeaders: Bool = false, allowFormulasInBody: Bool = false,
        clientCertificate: String? = nil, customHeaders: [CustomHeaderConfig] = []
    ) {
        storage = CopyOnWrite(
            Fields(
                name: name, label: label ?? name, url: url, externalCredential: externalCredential, enabled: enabled,
                generateAuthorizationHeader: generateAuthorizationHeader,
                allowFormulasInHeaders: allowFormulasInHeaders, allowFormulasInBody: allowFormulasInBody,
                clientCertificate: clientCertificate, customHeaders: customHeaders))
    }

    /// The `Host` header for the endpoint: host, and port when the URL names one.
    public var hostHeader: String {
        let host = url.host ?? ""
        return url.port.map { "\(host):\($0)" } ?? host
    }
}

extension UInt8 {
    /// The byte with an ASCII upper-case letter turned lower-case; any other byte as it is.
    @inlinable
    public var asciiLowercased: UInt8 { self >= 65 && self <= 90 ? self | 0x20 : self }
}

extension StringProtocol {
    /// ASCII case-insensitive comparison, without allocating.
    public func caseInsensitiveEquals(_ other: some StringProtocol) -> Bool {
        let a = self.utf8
        let b = other.utf8
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) where x != y {
            if x.asciiLowercased != y.asciiLowercased { return false }
        }
        return true
    }
}

extension String {
    /// ASCII case-insensitive equality (names are ASCII by the naming rules), specialised for
    /// `String` so per-request lookups avoid generic dispatch.
    @inlinable
    public func caseInsensitiveEquals(_ other: String) -> Bool {
        var a = self
        var b = other
        return a.withUTF8 { x in
            b.withUTF8 { y in
                guard x.count == y.count else { return false }
                for i in 0..<x.count where x[i] != y[i] {
                    if x[i].asciiLowercased != y[i].asciiLowercased { return false }
                }
                return true
            }
        }
    }
}
