import CalloutCore
import CalloutTokens

/// Verifies a JWT client assertion the way an identity provider does (RFC 7523 §3): signature
/// with the registered public key, `iss` = `sub` = client id, `aud` contains the token
/// endpoint, time claims with clock skew, bounded lifetime, `jti` present and unused.
public struct AssertionVerifier: Sendable {
    public let key: VerificationKey
    public let expectedAudience: String
    public let expectedClientId: String
    public let allowedAlgorithms: Set<SigningAlgorithm>
    public let maxLifetimeSeconds: Int64
    public let allowedClockSkewSeconds: Int64
    public let replayCache: JTIReplayCache?
    /// Whether `sub` must be the client id too (a client assertion); a JWT bearer grant's `sub`
    /// names the user the client acts for (RFC 7523 §3), so it is only required to be present.
    public var subjectIsClient = true

    public init(
        key: VerificationKey,
        expectedAudience: String,
        expectedClientId: String,
        allowedAlgorithms: Set<SigningAlgorithm> = Set(SigningAlgorithm.allCases),
        maxLifetimeSeconds: Int64 = 300,
        allowedClockSkewSeconds: Int64 = 30,
        replayCache: JTIReplayCache? = nil
    ) {
        self.key = key
        self.expectedAudience = expectedAudience
        self.expectedClientId = expectedClientId
        self.allowedAlgorithms = allowedAlgorithms
        self.maxLifetimeSeconds = maxLifetimeSeconds
        self.allowedClockSkewSeconds = allowedClockSkewSeconds
        self.replayCache = replayCache
    }

    /// Verifies `jwt` at `now` (seconds since the epoch). Throws `AssertionVerificationError`.
    /// The `jti` is recorded in the replay cache only when every other check passed.
    public func verify(_ jwt: String, now: Int64) throws -> VerifiedAssertion {
        let decoded = try DecodedJWT(jwt)

        guard let algName = decoded.header["alg"]?.stringValue else {
            throw AssertionVerificationError.algorithmNotAllowed("(missing)")
        }
        guard let algorithm = SigningAlgorithm(rawValue: algName), allowedAlgorithms.contains(algorithm) else {
            throw AssertionVerificationError.algorithmNotAllowed(algName)
        }
        guard algorithm.keyType == key.keyType else {
            throw AssertionVerificationError.algorithmKeyMismatch(algName)
        }
        guard key.isValidSignature(decoded.signature, for: Array(decoded.signingInput.utf8), algorithm: algorithm)
        else {
            throw AssertionVerificationError.badSignature
        }

        let claims = decoded.claims
        func string(_ name: String) throws -> String {
            guard let value = claims[name]?.stringValue else { throw AssertionVerificationError.missingClaim(name) }
            return value
        }
        func integer(_ name: String) throws -> Int64 {
            guard let value = claims[name]?.integerValue else { throw AssertionVerificationError.missingClaim(name) }
            return value
        }

        guard try string("iss") == expectedClientId else { throw AssertionVerificationError.issuerMismatch }
        let subject = try string("sub")
        guard !subjectIsClient || subject == expectedClientId else { throw AssertionVerificationError.subjectMismatch }
        let audiences: [String]
        switch claims["aud"] {
        case .string(let single): audiences = [single]
        case .array(let items): audiences = items.compactMap(\.stringValue)
        default: throw AssertionVerificationError.missingClaim("aud")
        }
        guard audiences.contains(expectedAudience) else { throw AssertionVerificationError.audienceMismatch }

        let expiresAt = try integer("exp")
        let issuedAt = try integer("iat")
        let notBefore: Int64? = try claims["nbf"].map { _ in try integer("nbf") }
        guard expiresAt > now - allowedClockSkewSeconds else { throw AssertionVerificationError.expired }
        guard issuedAt <= now + allowedClockSkewSeconds else { throw AssertionVerificationError.issuedInFuture }
        if let notBefore, notBefore > now + allowedClockSkewSeconds {
            throw AssertionVerificationError.notYetValid
        }
        guard expiresAt > issuedAt, expiresAt - issuedAt <= maxLifetimeSeconds else {
            throw AssertionVerificationError.lifetimeTooLong
        }
        let jti = try string("jti")
        guard !jti.isEmpty else { throw AssertionVerificationError.missingClaim("jti") }

        if let replayCache,
            !replayCache.insertIfUnseen(
                jti: jti, issuer: expectedClientId, expiresAt: expiresAt + allowedClockSkewSeconds, now: now)
        {
            throw AssertionVerificationError.replayed
        }
        return VerifiedAssertion(
            algorithm: algorithm, clientId: expectedClientId, audience: expectedAudience, issuedAt: issuedAt,
            notBefore: notBefore, expiresAt: expiresAt, jti: jti, header: decoded.header, claims: claims)
    }
}

/// An assertion that passed `AssertionVerifier.verify`.
public struct VerifiedAssertion: Sendable, Hashable {
    public let algorithm: SigningAlgorithm
    /// `iss` and `sub`.
    public let clientId: String
    /// The audience that matched.
    public let audience: String
    public let issuedAt: Int64
    public let notBefore: Int64?
    public let expiresAt: Int64
    public let jti: String
    public let header: [String: JSONValue]
    /// All claims, including custom ones such as `scope`.
    public let claims: [String: JSONValue]
}
