import Crypto

/// Who is calling: the names principals are matched against and the `$User` fields formulas read.
public struct CallerIdentity: Sendable, Equatable {
    /// The configured `[[caller]]` that authenticated, if any.
    public var callerName: String?
    public var permissionSets: [String]
    public var profile: String?
    /// `$User.<Field>` values, keyed by lowercased field name (formulas read them
    /// case-insensitively). A `[[caller]]`'s configured `user` value wins over an identity header
    /// for the same field; among headers for one field, the last received wins.
    public var user: [String: String]
    /// A specific principal the caller asked for (`X-Callout-Principal`).
    public var requestedPrincipal: String?

    public init(
        callerName: String? = nil, permissionSets: [String] = [], profile: String? = nil,
        user: [String: String] = [:], requestedPrincipal: String? = nil
    ) {
        self.callerName = callerName
        self.permissionSets = permissionSets
        self.profile = profile
        self.user = FormulaContext.lowercasingKeys(user)
        self.requestedPrincipal = requestedPrincipal
    }
}

/// Why a caller is refused before anything is forwarded.
public enum IdentityFailure: Error, Sendable, Equatable {
    /// Untrusted address and no (valid) `Proxy-Authorization`: answer 407.
    case proxyAuthenticationRequired
    /// An identity header value is unusable (control characters, too many entries).
    case badIdentityHeader(String)
}

/// Limits on what identity headers may carry.
public enum IdentityLimits {
    /// Distinct permission sets one request may present.
    public static let maxPermissionSets = 256
    /// Longest single permission set, profile or user field value.
    public static let maxValueLength = 1024
}

/// Decides whose identity headers to believe and builds the ``CallerIdentity``. A class: every
/// callout reads it through its configuration snapshot without copying the settings.
public final class IdentityResolver: Sendable {
    public let settings: ProxySettings
    public let callers: [CallerConfig]

    public init(settings: ProxySettings, callers: [CallerConfig]) {
        self.settings = settings
        self.callers = callers
    }

    /// `peer` is the client's address bytes (4 or 16); `headers` are (name, value) pairs as received.
    public func resolve(peer: [UInt8]?, headers: [(String, String)]) -> Result<CallerIdentity, IdentityFailure> {
        let trustedAddress = peer.map { p in settings.trustedCallers.contains { $0.contains(p) } } ?? false
        var caller: CallerConfig? = nil
        if let credential = headers.first(where: { $0.0.caseInsensitiveEquals("proxy-authorization") })?.1 {
            guard let secret = ProxyAuthorization.secret(from: credential) else {
                return .failure(.proxyAuthenticationRequired)
            }
            let digest = Array(SHA256.hash(data: Array(secret.utf8)))
            // Compare against every caller so timing does not tell which one matched.
            for c in callers where ConstantTime.equals(c.tokenSHA256, digest) { caller = c }
            if caller == nil { return .failure(.proxyAuthenticationRequired) }
        }
        if !trustedAddress && caller == nil { return .failure(.proxyAuthenticationRequired) }

        var identity = CallerIdentity()
        if let caller {
            identity.callerName = caller.name
            identity.permissionSets = caller.permissionSets
            identity.profile = caller.profile
            identity.user = FormulaContext.lowercasingKeys(caller.user)
        }
        let believeHeaders = caller.map(\.trustIdentityHeaders) ?? trustedAddress
        if believeHeaders {
            switch readHeaders(headers, into: &identity) {
            case .success: break
            case .failure(let f): return .failure(f)
            }
        }
        return .success(identity)
    }

    private func readHeaders(_ headers: [(String, String)], into identity: inout CallerIdentity) -> Result<
        Void, IdentityFailure
    > {
        let prefix = settings.userHeaderPrefix
        // Fields a `[[caller]]` configured win over headers; most callers configure none.
        let configuredFields: Set<String> = identity.user.isEmpty ? [] : Set(identity.user.keys)
        for (name, value) in headers {
            if name.caseInsensitiveEquals(settings.permissionSetsHeader) {
                // A list split on the comma byte (RFC 9110 §5.6.1), without building an array of parts.
                var rest = Substring(value)
                while !rest.isEmpty {
                    let comma = rest.utf8.firstIndex(of: UInt8(ascii: ",")) ?? rest.endIndex
                    let item = rest[..<comma]
                    rest = comma == rest.endIndex ? rest[comma...] : rest[rest.utf8.index(after: comma)...]
                    let set = item.trimming(" \t")
                    guard !set.isEmpty else { continue }
                    guard set.count <= IdentityLimits.maxValueLength else {
                        return .failure(.badIdentityHeader("a permission set name is too long"))
                    }
                    if !identity.permissionSets.contains(set) { identity.permissionSets.append(set) }
                }
                if identity.permissionSets.count > IdentityLimits.maxPermissionSets {
                    return .failure(.badIdentityHeader("more than \(IdentityLimits.maxPermissionSets) permission sets"))
                }
            } else if name.caseInsensitiveEquals(settings.profileHeader) {
                identity.profile = value.trimming(" \t")
            } else if let field = Self.field(name, afterPrefix: prefix) {
                guard !HeaderRules.hasControlCharacters(value), value.count <= IdentityLimits.maxValueLength else {
                    return .failure(.badIdentityHeader("\(name) has control characters or is too long"))
                }
                if !configuredFields.contains(field) { identity.user[field] = value }
            } else if name.caseInsensitiveEquals(settings.principalHeader) {
                identity.requestedPrincipal = value.trimming(" \t")
            }
        }
        return .success(())
    }

    /// Whether `name` is one of the identity headers that must never be forwarded.
    public func isIdentityHeader(_ name: String) -> Bool {
        name.caseInsensitiveEquals(settings.permissionSetsHeader) || name.caseInsensitiveEquals(settings.profileHeader)
            || name.caseInsensitiveEquals(settings.principalHeader)
            || Self.hasPrefix(name, settings.userHeaderPrefix)
    }

    /// Whether `name` starts with `prefix`, ASCII letters compared without case, read on bytes
    /// (header names are tokens: no grapheme work is needed).
    static func hasPrefix(_ name: String, _ prefix: String) -> Bool {
        let count = prefix.utf8.count
        guard name.utf8.count >= count else { return false }
        return Substring(name.utf8.prefix(count)).caseInsensitiveEquals(prefix)
    }

    /// The lower-cased field name of a `<prefix><Field>` header, or `nil` when `name` is not one
    /// (a different name, or the prefix alone).
    static func field(_ name: String, afterPrefix prefix: String) -> String? {
        guard name.utf8.count > prefix.utf8.count, hasPrefix(name, prefix) else { return nil }
        let start = name.utf8.index(name.utf8.startIndex, offsetBy: prefix.utf8.count)
        return String(Substring(name.utf8[start...])).lowercased()
    }
}

/// `Proxy-Authorization: Bearer <token>` or `Basic base64(user:password)`.
public enum ProxyAuthorization {
    /// The string whose SHA-256 is compared with `token_sha256`: the bearer token, or `user:password`.
    public static func secret(from header: String) -> String? {
        let parts = header.trimming(" \t").split(separator: " ", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        let value = parts[1].trimming(" \t")
        guard !value.isEmpty else { return nil }
        if parts[0].caseInsensitiveEquals("bearer") { return value }
        if parts[0].caseInsensitiveEquals("basic") {
            guard let bytes = Base64.decode(value), let text = String(validating: bytes, as: UTF8.self),
                text.contains(":")
            else { return nil }
            return text
        }
        return nil
    }
}

public enum ConstantTime {
    /// Compares without an early exit (lengths of SHA-256 digests are public).
    public static func equals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}

/// Standard base64 (RFC 4648 §4) decoding without Foundation.
public enum Base64 {
    public static func decode(_ text: String) -> [UInt8]? {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(c)] = UInt8(i)
        }
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        var padding = 0
        for c in text.utf8 {
            if c == UInt8(ascii: "=") {
                padding += 1
                continue
            }
            guard padding == 0 else { return nil }
            let v = table[Int(c)]
            guard v != 0xFF else { return nil }
            buffer = buffer << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        guard padding <= 2, text.utf8.count % 4 == 0 || padding == 0 else { return nil }
        return out
    }
}
