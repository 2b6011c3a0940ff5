import CalloutCore
import CalloutTokens

/// A compact JWS split into its parts; nothing here has been verified.
public struct DecodedJWT: Sendable, Hashable {
    public let header: [String: JSONValue]
    public let claims: [String: JSONValue]
    /// `base64url(header) + "." + base64url(claims)`, the bytes the signature covers.
    public let signingInput: String
    public let signature: [UInt8]

    /// Splits and decodes a compact JWS without verifying it (for choosing the verification
    /// key). Header and claims are read strictly (`JSONParser`: no duplicate members). Throws
    /// `AssertionVerificationError.malformed`.
    public init(_ jwt: String) throws(AssertionVerificationError) {
        let parts = jwt.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            throw .malformed("expected three dot-separated segments")
        }
        func object(_ segment: Substring, _ name: String) throws(AssertionVerificationError) -> [String: JSONValue] {
            guard let bytes = Base64URL.decode(segment) else {
                throw .malformed("\(name) is not base64url")
            }
            let value: JSONValue
            do {
                value = try JSONParser.parse(bytes)
            } catch {
                throw .malformed("\(name) is not JSON: \(error.reason)")
            }
            guard case .object(let object) = value else {
                throw .malformed("\(name) is not a JSON object")
            }
            return object
        }
        self.header = try object(parts[0], "header")
        self.claims = try object(parts[1], "claims")
        guard let signature = Base64URL.decode(parts[2]) else {
            throw .malformed("signature is not base64url")
        }
        self.signingInput = String(parts[0]) + "." + String(parts[1])
        self.signature = signature
    }
}
