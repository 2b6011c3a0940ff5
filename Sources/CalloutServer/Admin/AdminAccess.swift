import CalloutCore
import Crypto

/// Who may use the admin endpoints.
///
/// Without `admin_token_sha256`, only loopback peers (127.0.0.0/8, ::1). With it, any peer that
/// sends `Authorization: Bearer <token>` whose SHA-256 matches (compared in constant time);
/// `/healthz` and `/readyz` reveal nothing and need no token, but still only loopback peers
/// reach them when no token is configured.
public enum AdminAccess {
    public enum Decision: Equatable {
        case allow
        case forbidden
        case unauthorized
    }

    static let openPaths: Set<String> = ["/healthz", "/readyz"]

    public static func decide(path: String, peer: String?, authorization: String?, tokenSHA256: [UInt8]?) -> Decision {
        guard let expected = tokenSHA256 else {
            return isLoopback(peer) ? .allow : .forbidden
        }
        if openPaths.contains(path) { return .allow }
        guard let authorization, authorization.count > 7,
            authorization.prefix(7).caseInsensitiveEquals("Bearer ")
        else { return .unauthorized }
        let presented = Array(SHA256.hash(data: Array(authorization.dropFirst(7).utf8)))
        return ConstantTime.equals(presented, expected) ? .allow : .unauthorized
    }

    public static func isLoopback(_ peer: String?) -> Bool {
        guard let peer else { return false }
        if peer == "::1" { return true }
        if peer.hasPrefix("::ffff:127.") { return true }
        guard let bytes = IPAddress.parse(peer) else { return false }
        return bytes.count == 4 && bytes[0] == 127
    }
}
