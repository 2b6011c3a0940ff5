import CalloutCore
import Crypto
import Foundation

/// What a store row seals: the token and the times that decide whether it is served, so a row
/// whose clear columns were altered cannot make a token look younger than it is.
public struct StoredToken: Sendable, Equatable, Codable {
    public var accessToken: String
    public var tokenType: String
    public var scope: String?
    /// Seconds since 1970 on the store's clock when the exchange began.
    public var issuedAt: Double
    /// Seconds the token lives from `issuedAt`.
    public var lifetime: Int

    enum CodingKeys: String, CodingKey {
        case accessToken = "access_token"
        case tokenType = "token_type"
        case scope
        case issuedAt = "issued_at"
        case lifetime
    }

    public init(accessToken: String, tokenType: String, scope: String?, issuedAt: Double, lifetime: Int) {
        self.accessToken = accessToken
        self.tokenType = tokenType
        self.scope = scope
        self.issuedAt = issuedAt
        self.lifetime = lifetime
    }

    public init(_ response: TokenResponse, issuedAt: Double) {
        self.init(
            accessToken: response.accessToken, tokenType: response.tokenType, scope: response.scope,
            issuedAt: issuedAt, lifetime: response.expiresIn)
    }

    public func encoded() throws -> [UInt8] { Array(try JSONEncoder().encode(self)) }

    public static func decode(_ bytes: [UInt8]) throws(TokenStoreOpenError) -> StoredToken {
        guard let token = try? JSONDecoder().decode(StoredToken.self, from: Data(bytes)),
            !token.accessToken.isEmpty, token.lifetime > 0, token.issuedAt.isFinite
        else { throw .malformed }
        return token
    }

    /// The answer a replica's cache takes from this row at `now` (the store's clock).
    public func response(at now: Double) -> TokenResponse {
        TokenResponse(
            accessToken: accessToken, tokenType: tokenType, scope: scope, expiresIn: lifetime,
            issuedSecondsAgo: now - issuedAt, origin: .tokenStore)
    }

    /// The token's digest as the store keeps it, for compare-and-invalidate without the token.
    public static func digest(of accessToken: String) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: Array("callout-proxy token digest\0".utf8))
        hasher.update(data: Array(accessToken.utf8))
        return Array(hasher.finalize())
    }
}

extension StoredToken: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        "StoredToken(type: \(tokenType), lifetime: \(lifetime), issued_at: \(issuedAt), access_token: <redacted>)"
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror {
        Mirror(
            self, children: ["tokenType": tokenType, "lifetime": lifetime, "accessToken": "<redacted>"],
            displayStyle: .struct)
    }
}

extension TokenCacheKey {
    /// The store row's key: SHA-256 over every part of the cache key, each length-prefixed, so
    /// two keys that differ anywhere never share a row.
    public var storeDigest: [UInt8] {
        var hasher = SHA256()
        hasher.update(data: Array("callout-proxy token store row v1\0".utf8))
        func add(_ text: String?) {
            guard let text else {
                hasher.update(data: [0xFF, 0xFF, 0xFF, 0xFF])
                return
            }
            let bytes = Array(text.utf8)
            let n = UInt32(bytes.count)
            hasher.update(data: [UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)])
            hasher.update(data: bytes)
        }
        add(issuer.externalCredential)
        add(issuer.principal)
        add(issuer.clientId)
        add(issuer.identityProviderURL)
        add(issuer.signingKeyFingerprint)
        add(issuer.algorithm)
        add(issuer.flow)
        add(issuer.identityProviderClientCertificate)
        add(scope)
        add(canonicalClaims)
        return Array(hasher.finalize())
    }
}
