import CalloutCore
import CalloutDevTools
import CalloutTestSupport
import Crypto
import Foundation
import Testing
import _CryptoExtras

@testable import CalloutTokens

@Suite("JWT assertion signing")
struct AssertionSigningTests {
    /// Splits a JWS and checks its signature with swift-crypto directly, not through the verifier.
    static func independentlyVerify(_ jwt: String, algorithm: SigningAlgorithm, publicKeyPEM: String) throws -> Bool {
        let parts = jwt.split(separator: ".", omittingEmptySubsequences: false)
        try #require(parts.count == 3)
        let input = Data((parts[0] + "." + parts[1]).utf8)
        let signature = try #require(Base64URL.decode(parts[2]))
        switch algorithm {
        case .rs256, .rs512, .ps256:
            let key = try _RSA.Signing.PublicKey(pemRepresentation: publicKeyPEM)
            let rsaSignature = _RSA.Signing.RSASignature(rawRepresentation: signature)
            switch algorithm {
            case .rs256:
                return key.isValidSignature(rsaSignature, for: SHA256.hash(data: input), padding: .insecurePKCS1v1_5)
            case .rs512:
                return key.isValidSignature(rsaSignature, for: SHA512.hash(data: input), padding: .insecurePKCS1v1_5)
            default:
                return key.isValidSignature(rsaSignature, for: SHA256.hash(data: input), padding: .PSS)
            }
        case .es256:
            let key = try P256.Signing.PublicKey(pemRepresentation: publicKeyPEM)
            return key.isValidSignature(try P256.Signing.ECDSASignature(rawRepresentation: signature), for: input)
        }
    }

    static func segmentText(_ jwt: String, _ index: Int) throws -> String {
        let parts = jwt.split(separator: ".", omittingEmptySubsequences: false)
        return String(decoding: try #require(Base64URL.decode(parts[index])), as: UTF8.self)
    }

    @Test(arguments: [
        (SigningAlgorithm.rs256, "pkcs1"), (.rs256, "pkcs8"), (.rs512, "pkcs1"), (.rs512, "pkcs8"),
        (.ps256, "pkcs1"), (.ps256, "pkcs8"), (.es256, "pkcs8"),
    ])
    func signsAndVerifiesIndependently(algorithm: SigningAlgorithm, form: String) throws {
        let pem: String
        let publicPEM: String
        if algorithm == .es256 {
            pem = SigningTestSupport.p256Key.pemRepresentation
            publicPEM = SigningTestSupport.p256Key.publicKey.pemRepresentation
        } else {
            let rsa = SigningTestSupport.rsaKey
            pem = form == "pkcs1" ? rsa.pemRepresentation : rsa.pkcs8PEMRepresentation
            publicPEM = rsa.publicKey.pemRepresentation
        }
        let material = try SigningTestSupport.material(pem)
        let jwt = try JWTAssertion.sign(SigningTestSupport.request(algorithm, jti: "jti-1"), with: material)
        #expect(!jwt.contains("=") && !jwt.contains("+") && !jwt.contains("/"))
        #expect(try Self.independentlyVerify(jwt, algorithm: algorithm, publicKeyPEM: publicPEM))

        let decoded = try DecodedJWT(jwt)
        #expect(try Self.segmentText(jwt, 0) == #"{"alg":"\#(algorithm.rawValue)","typ":"JWT"}"#)
        #expect(decoded.header["alg"] == .string(algorithm.rawValue))
        #expect(decoded.header["typ"] == .string("JWT"))
        #expect(decoded.claims.keys.sorted() == ["aud", "exp", "iat", "iss", "jti", "nbf", "sub"])
        #expect(try Self.segmentText(jwt, 1) == JSONValue.object(decoded.claims).jsonText)
        #expect(decoded.claims["iss"] == .string("client-123"))
        #expect(decoded.claims["sub"] == .string("client-123"))
        #expect(decoded.claims["aud"] == .string("https://idp.example.test/oauth2/token"))
        #expect(decoded.claims["iat"] == .integer(1_700_000_000))
        #expect(decoded.claims["nbf"] == .integer(1_700_000_000))
        #expect(decoded.claims["exp"] == .integer(1_700_000_120))
        #expect(decoded.claims["jti"] == .string("jti-1"))
    }

    @Test func exactJSONTextWithIntegerTimes() throws {
        let material = try SigningTestSupport.material(SigningTestSupport.p256Key.pemRepresentation)
        let jwt = try JWTAssertion.sign(SigningTestSupport.request(.es256, jti: "abc"), with: material)
        #expect(try Self.segmentText(jwt, 0) == #"{"alg":"ES256","typ":"JWT"}"#)
        #expect(
            try Self.segmentText(jwt, 1)
                == #"{"aud":"https://idp.example.test/oauth2/token","exp":1700000120,"iat":1700000000,"iss":"client-123","jti":"abc","nbf":1700000000,"sub":"client-123"}"#
        )
    }

    @Test func rs512ReallyUsesSHA512() throws {
        let rsa = SigningTestSupport.rsaKey
        let material = try SigningTestSupport.material(rsa.pemRepresentation)
        let jwt = try JWTAssertion.sign(SigningTestSupport.request(.rs512), with: material)
        let publicPEM = rsa.publicKey.pemRepresentation
        #expect(try Self.independentlyVerify(jwt, algorithm: .rs512, publicKeyPEM: publicPEM))
        #expect(try !Self.independentlyVerify(jwt, algorithm: .rs256, publicKeyPEM: publicPEM))
        #expect(try !Self.independentlyVerify(jwt, algorithm: .ps256, publicKeyPEM: publicPEM))
        // And RS256 is PKCS#1 v1.5, not PSS.
        let rs256 = try JWTAssertion.sign(SigningTestSupport.request(.rs256), with: material)
        #expect(try !Self.independentlyVerify(rs256, algorithm: .ps256, publicKeyPEM: publicPEM))
        #expect(try !Self.independentlyVerify(rs256, algorithm: .rs512, publicKeyPEM: publicPEM))
    }

    @Test func jtiDiffersPerAssertionByDefault() throws {
        let material = try SigningTestSupport.material(SigningTestSupport.p256Key.pemRepresentation)
        let request = { AssertionRequest(clientId: "c", audience: "https://idp.test/token", algorithm: .es256, now: 1) }
        let first = try DecodedJWT(try JWTAssertion.sign(request(), with: material)).claims["jti"]
        let second = try DecodedJWT(try JWTAssertion.sign(request(), with: material)).claims["jti"]
        let firstText = try #require(first?.stringValue)
        #expect(first != second)
        #expect(firstText == firstText.lowercased())
        #expect(UUID(uuidString: firstText) != nil)
    }

    @Test func claimsAndHeaderEntriesOverrideAndAdd() throws {
        let material = try SigningTestSupport.material(SigningTestSupport.p256Key.pemRepresentation)
        let request = SigningTestSupport.request(
            .es256, jti: "j",
            claims: [
                (name: "scope", value: "api refresh_token"), (name: "sub", value: "user@example.test"),
                (name: "exp", value: "1700000060"),
                (name: "note", value: "quote \" backslash \\ newline \n tab \t \u{01}"),
            ],
            headerEntries: [(name: "kid", value: "key-7"), (name: "typ", value: "at+jwt")])
        let jwt = try JWTAssertion.sign(request, with: material)
        let decoded = try DecodedJWT(jwt)
        #expect(try Self.segmentText(jwt, 0) == #"{"alg":"ES256","kid":"key-7","typ":"at+jwt"}"#)
        #expect(decoded.header["kid"] == .string("key-7"))
        #expect(decoded.header["typ"] == .string("at+jwt"))
        #expect(
            decoded.claims.keys.sorted() == ["aud", "exp", "iat", "iss", "jti", "nbf", "note", "scope", "sub"])
        #expect(try Self.segmentText(jwt, 1) == JSONValue.object(decoded.claims).jsonText)
        #expect(decoded.claims["sub"] == .string("user@example.test"))
        #expect(decoded.claims["exp"] == .integer(1_700_000_060))
        #expect(decoded.claims["note"] == .string("quote \" backslash \\ newline \n tab \t \u{01}"))
        let body = try Self.segmentText(jwt, 1)
        #expect(body.contains(#""exp":1700000060,"#))
        #expect(body.contains(#""note":"quote \" backslash \\ newline \n tab \t \u0001""#))
    }

    @Test func nonIntegerTimeClaimAndAlgOverrideAreErrors() throws {
        let material = try SigningTestSupport.material(SigningTestSupport.p256Key.pemRepresentation)
        #expect(throws: AssertionBuildError.nonIntegerTimeClaim(name: "iat")) {
            try JWTAssertion.sign(
                SigningTestSupport.request(.es256, claims: [(name: "iat", value: "soon")]), with: material)
        }
        #expect(throws: AssertionBuildError.algorithmHeaderOverride) {
            try JWTAssertion.sign(
                SigningTestSupport.request(.es256, headerEntries: [(name: "alg", value: "none")]), with: material)
        }
    }

    @Test func certificateAddsThumbprintsAndKid() throws {
        let identity = try DevelopmentPKI.generateSigningIdentity(keyType: .rsa, commonName: "acme-client")
        let material = try SigningTestSupport.material(identity.privateKeyPEM, certificatePEM: identity.certificatePEM)
        let certificate = try #require(material.certificate)
        #expect(certificate.subject == "CN=acme-client")
        #expect(certificate.notValidAfter > Date())
        let jwt = try JWTAssertion.sign(SigningTestSupport.request(.rs256), with: material)
        let header = try DecodedJWT(jwt).header
        #expect(header.keys.sorted() == ["alg", "kid", "typ", "x5t", "x5t#S256"])
        #expect(try Self.segmentText(jwt, 0) == JSONValue.object(header).jsonText)
        #expect(header["kid"] == .string(certificate.x5t))
        #expect(header["x5t"] == .string(Base64URL.encode(Insecure.SHA1.hash(data: certificate.derBytes))))
        #expect(header["x5t#S256"] == .string(Base64URL.encode(SHA256.hash(data: certificate.derBytes))))
        #expect(certificate.x5t.count == 27 && certificate.x5tS256.count == 43)
        #expect(
            try Self.independentlyVerify(
                jwt, algorithm: .rs256, publicKeyPEM: certificate.publicKey.pemRepresentation))

        let withKid = try JWTAssertion.sign(
            SigningTestSupport.request(.rs256, headerEntries: [(name: "kid", value: "explicit")]), with: material)
        #expect(try DecodedJWT(withKid).header["kid"] == .string("explicit"))
    }

    @Test func certificateKeyMismatchIsRefused() throws {
        let identity = try DevelopmentPKI.generateSigningIdentity(keyType: .ec, commonName: "one")
        let other = P256.Signing.PrivateKey().pemRepresentation
        #expect(throws: KeyLoadError.certificateKeyMismatch) {
            try SigningMaterial.load(privateKeyPEM: other, certificatePEM: identity.certificatePEM, passphrase: nil)
        }
        #expect(throws: KeyLoadError.certificateKeyMismatch) {
            try SigningMaterial.load(
                privateKeyPEM: SigningTestSupport.rsaKey.pemRepresentation, certificatePEM: identity.certificatePEM,
                passphrase: nil)
        }
    }

    @Test(
        "x5t is SHA-1 over DER like openssl x509 -fingerprint -sha1",
        .enabled(if: SigningTestSupport.opensslPath != nil, "openssl is not installed on this machine"))
    func x5tMatchesOpenSSLFingerprint() throws {
        let identity = try DevelopmentPKI.generateSigningIdentity(keyType: .ec, commonName: "fingerprint")
        let directory = try SigningTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("cert.pem").path
        try identity.certificatePEM.write(toFile: path, atomically: true, encoding: .utf8)
        let output = try SigningTestSupport.openssl(["x509", "-in", path, "-noout", "-fingerprint", "-sha1"])
        // "SHA1 Fingerprint=AB:CD:..."
        let hex = try #require(output.split(separator: "=").last).trimmingCharacters(in: .whitespacesAndNewlines)
            .replacingOccurrences(of: ":", with: "")
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(try #require(UInt8(hex[index..<next], radix: 16)))
            index = next
        }
        #expect(bytes.count == 20)
        #expect(try CertificateInfo(pem: identity.certificatePEM).x5t == Base64URL.encode(bytes))
    }
}
