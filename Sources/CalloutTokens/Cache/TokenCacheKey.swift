import CalloutCore
import Crypto

/// Who a token is issued to and by: everything of the configuration that decides the token.
/// Two configurations that differ in any of these never share a cache entry, so a fetch started
/// under an old configuration (before a reload) can never fill the cache a new one reads.
public struct TokenIssuer: Hashable, Sendable {
    public let externalCredential: String
    public let principal: String
    public let clientId: String
    /// The token endpoint.
    public let identityProviderURL: String
    /// SHA-256 (hex) of the signing key's public key (SubjectPublicKeyInfo DER); empty when unknown.
    public let signingKeyFingerprint: String
    /// The JWS algorithm of the assertion.
    public let algorithm: String
    /// The authentication flow (there is one today; it is part of the key so a second cannot share).
    public let flow: String
    /// The `[[certificate]]` presented as a TLS client certificate to the identity provider.
    public let identityProviderClientCertificate: String?

    public init(
        externalCredential: String, principal: String, clientId: String = "", identityProviderURL: String = "",
        signingKeyFingerprint: String = "", algorithm: String = "",
        flow: String = ExternalCredentialConfig.authenticationFlow, identityProviderClientCertificate: String? = nil
    ) {
        self.externalCredential = externalCredential
        self.principal = principal
        self.clientId = clientId
        self.identityProviderURL = identityProviderURL
        self.signingKeyFingerprint = signingKeyFingerprint
        self.algorithm = algorithm
        self.flow = flow
        self.identityProviderClientCertificate = identityProviderClientCertificate
    }
}

/// Identifies one cached token: its ``TokenIssuer`` (credential, principal, client id, identity
/// provider, signing key, algorithm, flow), the evaluated scope and the evaluated inputs of the
/// assertion that vary per caller (per-user formulas give per-user tokens).
///
/// The claims that change on every assertion (`iat`, `nbf`, `exp`, `jti`) are left out; for a
/// formula that reads the clock or randomness, the values of the merge fields it reads stand in
/// for its value (see `TokenPreparation`).
public struct TokenCacheKey: Hashable, Sendable {
    /// Claims that differ on every assertion and so never take part in the key.
    public static let volatileClaims: Set<String> = ["iat", "nbf", "exp", "jti"]

    /// The parts, in one immutable object with their hash worked out once: the data plane copies a
    /// key and looks it up on every callout, and neither then touches its strings.
    @usableFromInline
    final class Storage: Sendable {
        @usableFromInline let issuer: TokenIssuer
        @usableFromInline let scope: String?
        @usableFromInline let canonicalClaims: String
        @usableFromInline let hash: Int

        init(issuer: TokenIssuer, scope: String?, canonicalClaims: String) {
            self.issuer = issuer
            self.scope = scope
            self.canonicalClaims = canonicalClaims
            var hasher = Hasher()
            hasher.combine(issuer)
            hasher.combine(scope)
            hasher.combine(canonicalClaims)
            hash = hasher.finalize()
        }
    }
    @usableFromInline
    let storage: Storage

    @inlinable
    public var issuer: TokenIssuer { storage.issuer }
    @inlinable
    public var scope: String? { storage.scope }
    /// `k=v` pairs sorted by name and joined with `&`; `\`, `&` and `=` inside names and values
    /// are escaped with `\`, so distinct claim sets never collide.
    @inlinable
    public var canonicalClaims: String { storage.canonicalClaims }

    @inlinable
    public static func == (a: TokenCacheKey, b: TokenCacheKey) -> Bool {
        a.storage === b.storage
            || (a.storage.hash == b.storage.hash && a.issuer == b.issuer && a.scope == b.scope
                && a.canonicalClaims == b.canonicalClaims)
    }

    @inlinable
    public func hash(into hasher: inout Hasher) {
        hasher.combine(storage.hash)
    }

    public var externalCredential: String { issuer.externalCredential }
    public var principal: String { issuer.principal }

    public init(issuer: TokenIssuer, scope: String?, claims: [String: String] = [:]) {
        storage = Storage(issuer: issuer, scope: scope, canonicalClaims: Self.canonicalize(claims))
    }

    /// A key naming only the credential and principal, for code that never signs (the cache's
    /// own tests and views).
    public init(
        externalCredential: String,
        principal: String,
        scope: String?,
        claims: [String: String] = [:]
    ) {
        self.init(
            issuer: TokenIssuer(externalCredential: externalCredential, principal: principal), scope: scope,
            claims: claims)
    }

    /// The canonical string for a claim set, without the volatile claims.
    public static func canonicalize(_ claims: [String: String]) -> String {
        claims
            .filter { !volatileClaims.contains($0.key) }
            .sorted { $0.key < $1.key }
            .map { "\(escape($0.key))=\(escape($0.value))" }
            .joined(separator: "&")
    }

    private static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            if character == "\\" || character == "&" || character == "=" { out.append("\\") }
            out.append(character)
        }
        return out
    }

    /// A short digest of the canonical claims, for admin views: claim values may be personal
    /// data, so they are never shown.
    public var claimsDigest: String {
        guard !canonicalClaims.isEmpty else { return "-" }
        return Hex.encode(SHA256.hash(data: Array(canonicalClaims.utf8)).prefix(6))
    }
}

extension TokenCacheKey: CustomStringConvertible {
    public var description: String {
        "\(externalCredential)/\(principal) scope=\(scope ?? "-") claims=\(claimsDigest)"
    }
}
