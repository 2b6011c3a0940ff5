import Crypto

/// Identifies one cached token: the external credential, the principal acting, the evaluated
/// scope and the evaluated assertion claims that vary per request (per-user formulas give
/// per-user tokens).
///
/// The claims that change on every assertion (`iat`, `nbf`, `exp`, `jti`) are left out.
public struct TokenCacheKey: Hashable, Sendable {
    /// Claims that differ on every assertion and so never take part in the key.
    public static let volatileClaims: Set<String> = ["iat", "nbf", "exp", "jti"]

    public let externalCredential: String
    public let principal: String
    public let scope: String?
    /// `k=v` pairs sorted by name and joined with `&`; `\`, `&` and `=` inside names and values
    /// are escaped with `\`, so distinct claim sets never collide.
    public let canonicalClaims: String

    public init(
        externalCredential: String,
        principal: String,
        scope: String?,
        claims: [String: String] = [:]
    ) {
        self.externalCredential = externalCredential
        self.principal = principal
        self.scope = scope
        self.canonicalClaims = Self.canonicalize(claims)
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
        let digest = SHA256.hash(data: Array(canonicalClaims.utf8))
        return digest.prefix(6).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}

extension TokenCacheKey: CustomStringConvertible {
    public var description: String {
        "\(externalCredential)/\(principal) scope=\(scope ?? "-") claims=\(claimsDigest)"
    }
}
