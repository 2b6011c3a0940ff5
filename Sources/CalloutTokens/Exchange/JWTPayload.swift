import CalloutCore

/// Reads a JWT's payload without checking its signature (used only to learn an access token's
/// `exp` when the endpoint sent no `expires_in`, and by development tools).
package enum JWTPayload {
    package static func claims(of jwt: String) -> [String: JSONValue]? {
        let segments = jwt.split(separator: ".", omittingEmptySubsequences: false)
        guard segments.count == 3, let payload = Base64URL.decode(segments[1]) else { return nil }
        return JSONValue.object(from: payload)
    }
}
