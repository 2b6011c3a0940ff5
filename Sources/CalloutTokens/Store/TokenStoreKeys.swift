import Crypto
import Foundation

/// The keys that seal tokens in the shared store: AES-256-GCM, the row's key digest as
/// associated data, so a sealed token copied to another row never opens. The current key seals;
/// it and the previous keys (after a rotation) open. Each key is named in its rows by an 8-byte
/// identifier derived from it, which tells nothing about the key.
public struct TokenStoreKeys: Sendable {
    public struct Key: Sendable {
        public let id: [UInt8]
        fileprivate let key: SymmetricKey
    }

    public let current: Key
    public let previous: [Key]

    /// - Parameters: raw 32-byte keys.
    public init(current: [UInt8], previous: [[UInt8]] = []) throws(TokenStoreKeyError) {
        self.current = try Self.key(current)
        var seen: Set<[UInt8]> = [self.current.id]
        var previousKeys: [Key] = []
        for raw in previous {
            let key = try Self.key(raw)
            if seen.insert(key.id).inserted { previousKeys.append(key) }
        }
        self.previous = previousKeys
    }

    /// A key as it is given in its environment variable: 32 bytes in base64 (standard or URL-safe
    /// alphabet, padding optional, surrounding white space ignored).
    public static func decode(base64 text: String) throws(TokenStoreKeyError) -> [UInt8] {
        var unpadded = Substring(text.trimmingCharacters(in: .whitespacesAndNewlines))
        while unpadded.hasSuffix("=") { unpadded.removeLast() }
        let urlSafe = unpadded.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        guard let bytes = Base64URL.decode(urlSafe) else { throw .notBase64 }
        guard bytes.count == 32 else { throw .wrongLength(bytes.count) }
        return bytes
    }

    private static func key(_ raw: [UInt8]) throws(TokenStoreKeyError) -> Key {
        guard raw.count == 32 else { throw .wrongLength(raw.count) }
        var hasher = SHA256()
        hasher.update(data: Array("callout-proxy token store key id\0".utf8))
        hasher.update(data: raw)
        return Key(id: Array(hasher.finalize().prefix(8)), key: SymmetricKey(data: raw))
    }

    /// Seals `plaintext` for the row `keyDigest` with the current key: nonce, ciphertext and tag.
    public func seal(_ plaintext: [UInt8], keyDigest: [UInt8]) throws -> [UInt8] {
        let box = try AES.GCM.seal(plaintext, using: current.key, authenticating: keyDigest)
        guard let combined = box.combined else { throw TokenStoreKeyError.sealFailed }
        return Array(combined)
    }

    /// Opens a row's sealed token. Throws when no key has `keyID`, or when the row was altered,
    /// moved to another key digest, or sealed with another key of the same id.
    public func open(_ sealed: [UInt8], keyID: [UInt8], keyDigest: [UInt8]) throws(TokenStoreOpenError) -> [UInt8] {
        guard let key = ([current] + previous).first(where: { $0.id == keyID }) else { throw .unknownKey }
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            return Array(try AES.GCM.open(box, using: key.key, authenticating: keyDigest))
        } catch {
            throw .notAuthentic
        }
    }
}

public enum TokenStoreKeyError: Error, Equatable, Sendable, CustomStringConvertible {
    case notBase64
    case wrongLength(Int)
    case sealFailed

    public var description: String {
        switch self {
        case .notBase64: "is not base64 (32 random bytes, e.g. from `openssl rand -base64 32`)"
        case .wrongLength(let n): "is \(n) bytes; it must be 32 random bytes in base64 (`openssl rand -base64 32`)"
        case .sealFailed: "could not seal the token"
        }
    }
}

/// Why a stored row was not served. Either way the row counts as a miss.
public enum TokenStoreOpenError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Sealed with a key this replica does not have (not the current one, not a previous one).
    case unknownKey
    /// Altered, moved to another key, or sealed with a different key of the same id.
    case notAuthentic
    /// It opened, but what it holds is not a stored token.
    case malformed

    public var description: String {
        switch self {
        case .unknownKey: "sealed with a key this replica does not have (rotate with previous_encryption_key_envs)"
        case .notAuthentic: "failed authentication: altered, moved to another key, or sealed with another key"
        case .malformed: "opened, but does not hold a stored token"
        }
    }
}
