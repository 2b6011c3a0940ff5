import CalloutCore
import Foundation

/// Builds and signs compact JWS client assertions (RFC 7515, RFC 7523).
public enum JWTAssertion {
    /// The claims whose values are always JSON integers.
    public static let integerClaims: Set<String> = ["iat", "nbf", "exp"]

    /// The JOSE header: `alg`, `typ` ("JWT"), `kid`, `x5t`, `x5t#S256` and added header entries
    /// (written with sorted keys).
    ///
    /// `kid` is the `kid` header entry when one is given; otherwise, when a certificate is
    /// configured, `kid` is the certificate's `x5t` value (base64url SHA-1 thumbprint), and
    /// without a certificate there is no `kid`. `x5t` and `x5t#S256` are present only with a
    /// certificate. Header entries replace members of the same name or are added.
    public static func header(
        for request: AssertionRequest, certificate: CertificateInfo?
    ) throws -> [String: JSONValue] {
        var header: [String: JSONValue] = [:]
        header["alg"] = .string(request.algorithm.rawValue)
        header["typ"] = .string("JWT")
        if let certificate {
            header["kid"] = .string(certificate.x5t)
            header["x5t"] = .string(certificate.x5t)
            header["x5t#S256"] = .string(certificate.x5tS256)
        }
        for entry in request.headerEntries {
            guard entry.name != "alg" else { throw AssertionBuildError.algorithmHeaderOverride }
            header[entry.name] = .string(entry.value)
        }
        return header
    }

    /// The claims: `iss`, `sub`, `aud`, `iat`, `nbf`, `exp`, `jti` and added claims (written with
    /// sorted keys). Defaults: `iss` = `sub` = client id, `aud` = audience, `iat` = now,
    /// `nbf` = now - notBeforeSkewSeconds, `exp` = now + expirationSeconds. Request claims replace
    /// defaults of the same name or are added. (This is the signer; the configuration refuses
    /// `iat`, `nbf` and `jti` claims, and `TokenPreparation` never passes them.)
    public static func claims(for request: AssertionRequest) throws -> [String: JSONValue] {
        guard request.expirationSeconds > 0 else { throw AssertionBuildError.nonPositiveExpiration }
        var claims: [String: JSONValue] = [:]
        claims["iss"] = .string(request.clientId)
        claims["sub"] = .string(request.clientId)
        claims["aud"] = .string(request.audience)
        claims["iat"] = .integer(request.now)
        claims["nbf"] = .integer(request.now - max(0, request.notBeforeSkewSeconds))
        claims["exp"] = .integer(request.now + request.expirationSeconds)
        claims["jti"] = .string(request.jti)
        for claim in request.claims {
            if integerClaims.contains(claim.name) {
                let text = claim.value.trimmingCharacters(in: .whitespaces)
                guard let seconds = Int64(text) else { throw AssertionBuildError.nonIntegerTimeClaim(name: claim.name) }
                claims[claim.name] = .integer(seconds)
            } else {
                claims[claim.name] = .string(claim.value)
            }
        }
        return claims
    }

    /// Builds and signs the assertion; returns `header.claims.signature` (base64url, no padding).
    ///
    /// Throws `AssertionBuildError` for bad claims and `KeyLoadError.algorithmKeyMismatch` when
    /// the key cannot sign with the request's algorithm.
    public static func sign(_ request: AssertionRequest, with material: SigningMaterial) throws -> String {
        try material.requireCanSign(request.algorithm)
        let header = try header(for: request, certificate: material.certificate)
        let claims = try claims(for: request)
        let signingInput =
            Base64URL.encode(Array(JSONValue.object(header).jsonText.utf8)) + "."
            + Base64URL.encode(Array(JSONValue.object(claims).jsonText.utf8))
        let signature = try material.key.sign(Array(signingInput.utf8), algorithm: request.algorithm)
        return signingInput + "." + Base64URL.encode(signature)
    }
}
