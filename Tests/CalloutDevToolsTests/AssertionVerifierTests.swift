import CalloutCore
import CalloutDevTools
import CalloutTestSupport
import Crypto
import Foundation
import Testing
import _CryptoExtras

@testable import CalloutTokens

@Suite("Assertion verifier")
struct AssertionVerifierTests {
    static let audience = "https://idp.example.test/oauth2/token"
    static let now: Int64 = 1_700_000_000

    static func verifier(
        for material: SigningMaterial, cache: JTIReplayCache? = nil, audience: String = audience
    ) -> AssertionVerifier {
        AssertionVerifier(
            key: material.key.verificationKey, expectedAudience: audience, expectedClientId: "client-123",
            maxLifetimeSeconds: 300, allowedClockSkewSeconds: 30, replayCache: cache)
    }

    static func rsaMaterial() throws -> SigningMaterial {
        try SigningTestSupport.material(SigningTestSupport.rsaKey.pkcs8PEMRepresentation)
    }

    @Test(arguments: SigningAlgorithm.allCases)
    func acceptsAValidAssertion(algorithm: SigningAlgorithm) throws {
        let material =
            algorithm == .es256
            ? try SigningTestSupport.material(SigningTestSupport.p256Key.pemRepresentation) : try Self.rsaMaterial()
        let jwt = try JWTAssertion.sign(
            SigningTestSupport.request(algorithm, jti: "j1", claims: [(name: "scope", value: "api")]), with: material)
        let verified = try Self.verifier(for: material).verify(jwt, now: Self.now + 10)
        #expect(verified.algorithm == algorithm)
        #expect(verified.clientId == "client-123")
        #expect(verified.jti == "j1")
        #expect(verified.expiresAt == Self.now + 120)
        #expect(verified.claims["scope"] == .string("api"))
    }

    @Test func verifiesWithTheCertificateKey() throws {
        let identity = try DevelopmentPKI.generateSigningIdentity(keyType: .ec, commonName: "client")
        let material = try SigningTestSupport.material(identity.privateKeyPEM, certificatePEM: identity.certificatePEM)
        let jwt = try JWTAssertion.sign(SigningTestSupport.request(.es256), with: material)
        let verifier = AssertionVerifier(
            key: try VerificationKey(pem: identity.certificatePEM), expectedAudience: Self.audience,
            expectedClientId: "client-123")
        #expect(throws: Never.self) { try verifier.verify(jwt, now: Self.now) }
    }

    @Test func rejectsTamperedPayload() throws {
        let material = try Self.rsaMaterial()
        let jwt = try JWTAssertion.sign(SigningTestSupport.request(.rs256), with: material)
        let parts = jwt.split(separator: ".").map(String.init)
        var claims = try DecodedJWT(jwt).claims
        claims["sub"] = .string("someone-else")
        let tampered = parts[0] + "." + Base64URL.encode(Array(JSONValue.object(claims).jsonText.utf8)) + "." + parts[2]
        #expect(throws: AssertionVerificationError.badSignature) {
            try Self.verifier(for: material).verify(tampered, now: Self.now)
        }
        // A signature from another key fails too.
        let otherKey = try SigningTestSupport.material(SigningTestSupport.p256Key.pemRepresentation)
        let foreign = try JWTAssertion.sign(SigningTestSupport.request(.es256), with: otherKey)
        #expect(throws: AssertionVerificationError.algorithmKeyMismatch("ES256")) {
            try Self.verifier(for: material).verify(foreign, now: Self.now)
        }
    }

    @Test func rejectsAlgNoneAndDisallowedAlgorithms() throws {
        let material = try Self.rsaMaterial()
        let jwt = try JWTAssertion.sign(SigningTestSupport.request(.rs256), with: material)
        let parts = jwt.split(separator: ".").map(String.init)
        let noneHeader = Base64URL.encode(Array(#"{"alg":"none","typ":"JWT"}"#.utf8))
        for unsigned in [noneHeader + "." + parts[1] + ".", noneHeader + "." + parts[1] + "." + parts[2]] {
            #expect(throws: AssertionVerificationError.algorithmNotAllowed("none")) {
                try Self.verifier(for: material).verify(unsigned, now: Self.now)
            }
        }
        let onlyRS512 = AssertionVerifier(
            key: material.key.verificationKey, expectedAudience: Self.audience, expectedClientId: "client-123",
            allowedAlgorithms: [.rs512])
        #expect(throws: AssertionVerificationError.algorithmNotAllowed("RS256")) {
            try onlyRS512.verify(jwt, now: Self.now)
        }
        // Relabelling an RS512 signature as RS256 does not verify.
        let rs512 = try JWTAssertion.sign(SigningTestSupport.request(.rs512), with: material).split(separator: ".")
        let relabelled =
            Base64URL.encode(Array(#"{"alg":"RS256","typ":"JWT"}"#.utf8)) + "." + rs512[1] + "." + rs512[2]
        #expect(throws: AssertionVerificationError.badSignature) {
            try Self.verifier(for: material).verify(relabelled, now: Self.now)
        }
    }

    @Test func rejectsWrongAudienceAndIssuer() throws {
        let material = try Self.rsaMaterial()
        let jwt = try JWTAssertion.sign(SigningTestSupport.request(.rs256), with: material)
        #expect(throws: AssertionVerificationError.audienceMismatch) {
            try Self.verifier(for: material, audience: "https://other.example.test/token").verify(jwt, now: Self.now)
        }
        let wrongIssuer = try JWTAssertion.sign(
            SigningTestSupport.request(.rs256, claims: [(name: "iss", value: "intruder")]), with: material)
        #expect(throws: AssertionVerificationError.issuerMismatch) {
            try Self.verifier(for: material).verify(wrongIssuer, now: Self.now)
        }
        let wrongSubject = try JWTAssertion.sign(
            SigningTestSupport.request(.rs256, claims: [(name: "sub", value: "intruder")]), with: material)
        #expect(throws: AssertionVerificationError.subjectMismatch) {
            try Self.verifier(for: material).verify(wrongSubject, now: Self.now)
        }
    }

    @Test func enforcesTimeClaims() throws {
        let material = try Self.rsaMaterial()
        let verifier = Self.verifier(for: material)
        let jwt = try JWTAssertion.sign(SigningTestSupport.request(.rs256), with: material)
        // exp = now + 120, skew 30.
        #expect(throws: Never.self) { try verifier.verify(jwt, now: Self.now + 149) }
        #expect(throws: AssertionVerificationError.expired) { try verifier.verify(jwt, now: Self.now + 150) }
        #expect(throws: AssertionVerificationError.issuedInFuture) { try verifier.verify(jwt, now: Self.now - 31) }

        let future = try JWTAssertion.sign(
            SigningTestSupport.request(.rs256, claims: [(name: "nbf", value: "\(Self.now + 100)")]), with: material)
        #expect(throws: AssertionVerificationError.notYetValid) { try verifier.verify(future, now: Self.now) }

        let long = try JWTAssertion.sign(
            SigningTestSupport.request(.rs256, claims: [(name: "exp", value: "\(Self.now + 3600)")]), with: material)
        #expect(throws: AssertionVerificationError.lifetimeTooLong) { try verifier.verify(long, now: Self.now) }

        let noJTI = try JWTAssertion.sign(
            SigningTestSupport.request(.rs256, claims: [(name: "jti", value: "")]), with: material)
        #expect(throws: AssertionVerificationError.missingClaim("jti")) { try verifier.verify(noJTI, now: Self.now) }
    }

    @Test func rejectsReplayedJTI() throws {
        let material = try Self.rsaMaterial()
        let cache = JTIReplayCache(capacity: 100)
        let verifier = Self.verifier(for: material, cache: cache)
        let jwt = try JWTAssertion.sign(SigningTestSupport.request(.rs256, jti: "once"), with: material)
        _ = try verifier.verify(jwt, now: Self.now)
        #expect(throws: AssertionVerificationError.replayed) { try verifier.verify(jwt, now: Self.now + 1) }
        let fresh = try JWTAssertion.sign(SigningTestSupport.request(.rs256, jti: "twice"), with: material)
        #expect(throws: Never.self) { try verifier.verify(fresh, now: Self.now + 1) }
    }

    @Test func replayCacheIsBoundedAndForgetsExpiredIds() {
        let cache = JTIReplayCache(capacity: 3)
        #expect(cache.insertIfUnseen(jti: "a", issuer: "c", expiresAt: 10, now: 0))
        #expect(!cache.insertIfUnseen(jti: "a", issuer: "c", expiresAt: 10, now: 5))
        #expect(cache.insertIfUnseen(jti: "a", issuer: "other", expiresAt: 10, now: 5))
        #expect(cache.insertIfUnseen(jti: "b", issuer: "c", expiresAt: 20, now: 5))
        #expect(cache.insertIfUnseen(jti: "d", issuer: "c", expiresAt: 30, now: 15))
        #expect(cache.count <= 3)
        #expect(cache.insertIfUnseen(jti: "a", issuer: "c", expiresAt: 40, now: 11))
        #expect(!cache.insertIfUnseen(jti: "d", issuer: "c", expiresAt: 30, now: 16))
    }

    @Test func errorDescriptionsDoNotEchoTheAssertion() throws {
        let material = try Self.rsaMaterial()
        let jwt = try JWTAssertion.sign(SigningTestSupport.request(.rs256), with: material)
        let segments = jwt.split(separator: ".").map(String.init)
        do {
            _ = try Self.verifier(for: material).verify(jwt, now: Self.now + 10_000)
            Issue.record("expected expiry")
        } catch {
            for segment in segments { #expect(!"\(error)".contains(segment)) }
        }
    }
}
