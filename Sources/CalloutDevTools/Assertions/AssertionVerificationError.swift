/// Why a client assertion was rejected. Descriptions never include the assertion itself.
public enum AssertionVerificationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Not a compact JWS with a JSON header and claims.
    case malformed(String)
    /// The header `alg` is missing, `none`, unknown or not allowed.
    case algorithmNotAllowed(String)
    /// The header `alg` needs a different key type than the verification key.
    case algorithmKeyMismatch(String)
    /// The signature does not verify.
    case badSignature
    /// `aud` does not contain the expected audience.
    case audienceMismatch
    /// `iss` is not the expected client id.
    case issuerMismatch
    /// `sub` is not the expected client id.
    case subjectMismatch
    /// A required claim is missing or has the wrong JSON type.
    case missingClaim(String)
    /// `exp` has passed (beyond the allowed clock skew).
    case expired
    /// `nbf` is in the future (beyond the allowed clock skew).
    case notYetValid
    /// `iat` is in the future (beyond the allowed clock skew).
    case issuedInFuture
    /// `exp` - `iat` exceeds the maximum lifetime, or `exp` is not after `iat`.
    case lifetimeTooLong
    /// This `jti` was already used by this issuer.
    case replayed

    public var description: String {
        switch self {
        case .malformed(let reason): "malformed assertion: \(reason)"
        case .algorithmNotAllowed(let alg): "signing algorithm '\(alg)' is not allowed"
        case .algorithmKeyMismatch(let alg): "signing algorithm '\(alg)' does not fit the registered key"
        case .badSignature: "the assertion signature does not verify"
        case .audienceMismatch: "the assertion audience (aud) is not this token endpoint"
        case .issuerMismatch: "the assertion issuer (iss) is not the client id"
        case .subjectMismatch: "the assertion subject (sub) is not the client id"
        case .missingClaim(let name): "the assertion lacks a valid '\(name)' claim"
        case .expired: "the assertion has expired"
        case .notYetValid: "the assertion is not yet valid (nbf)"
        case .issuedInFuture: "the assertion was issued in the future (iat)"
        case .lifetimeTooLong: "the assertion lifetime (exp - iat) is too long"
        case .replayed: "the assertion id (jti) was already used"
        }
    }
}
