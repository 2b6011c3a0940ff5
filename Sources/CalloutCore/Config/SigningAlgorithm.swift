/// JWS algorithms an external credential may sign its client assertion with.
public enum SigningAlgorithm: String, Sendable, CaseIterable, Hashable {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (the default).
    case rs256 = "RS256"
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    case rs512 = "RS512"
    /// RSASSA-PSS with SHA-256.
    case ps256 = "PS256"
    /// ECDSA on P-256 with SHA-256, signature as raw r||s.
    case es256 = "ES256"

    public enum KeyType: String, Sendable { case rsa = "RSA", ec = "EC P-256" }

    public var keyType: KeyType {
        switch self {
        case .rs256, .rs512, .ps256: .rsa
        case .es256: .ec
        }
    }
}
