import Crypto
import Foundation
import SwiftASN1
import _CryptoExtras

/// PKCS#8 `EncryptedPrivateKeyInfo` with PBES2 (RFC 8018): what `openssl genpkey -aes256` and
/// `openssl pkcs8 -topk8 -v2 aes256` write.
///
/// ```
/// EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm AlgorithmIdentifier, encryptedData OCTET STRING }
/// PBES2-params ::= SEQUENCE { keyDerivationFunc AlgorithmIdentifier, encryptionScheme AlgorithmIdentifier }
/// PBKDF2-params ::= SEQUENCE { salt OCTET STRING, iterationCount INTEGER, keyLength INTEGER OPTIONAL,
///                              prf AlgorithmIdentifier DEFAULT hmacWithSHA1 }
/// ```
struct EncryptedPrivateKeyInfo {
    enum PRF {
        case hmacSHA1, hmacSHA256, hmacSHA384, hmacSHA512

        var hashFunction: KDF.Insecure.PBKDF2.HashFunction {
            switch self {
            case .hmacSHA1: .insecureSHA1
            case .hmacSHA256: .sha256
            case .hmacSHA384: .sha384
            case .hmacSHA512: .sha512
            }
        }
    }

    /// Upper bound on PBKDF2 iterations, so a hostile file cannot stall loading.
    static let maximumIterations = 10_000_000

    let salt: [UInt8]
    let iterations: Int
    let prf: PRF
    let keyByteCount: Int
    let iv: [UInt8]
    let encryptedData: [UInt8]

    private enum OID {
        static let pbes2: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 5, 13]
        static let pbkdf2: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 5, 12]
        static let hmacSHA1: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 2, 7]
        static let hmacSHA256: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 2, 9]
        static let hmacSHA384: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 2, 10]
        static let hmacSHA512: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 2, 11]
        static let aes128CBC: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 2]
        static let aes192CBC: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 22]
        static let aes256CBC: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 42]
    }

    /// Parses the DER; throws `KeyLoadError` only.
    init(derEncoded der: [UInt8]) throws {
        do {
            let root = try DER.parse(der)
            var parsed: (ASN1ObjectIdentifier, ASN1Node?, [UInt8])?
            try DER.sequence(root, identifier: .sequence) { nodes in
                let (algorithm, parameters) = try Self.algorithmIdentifier(&nodes)
                let data = try ASN1OctetString(derEncoded: &nodes)
                parsed = (algorithm, parameters, Array(data.bytes))
            }
            guard let (scheme, schemeParameters, encryptedData) = parsed else {
                throw KeyLoadError.malformedKey(format: "encrypted PKCS#8")
            }
            guard scheme == OID.pbes2, let schemeParameters else {
                throw KeyLoadError.unsupportedEncryption("scheme \(scheme) (only PBES2)")
            }
            self.encryptedData = encryptedData

            var kdf: (ASN1ObjectIdentifier, ASN1Node?)?
            var cipher: (ASN1ObjectIdentifier, ASN1Node?)?
            try DER.sequence(schemeParameters, identifier: .sequence) { nodes in
                kdf = try Self.algorithmIdentifier(&nodes)
                cipher = try Self.algorithmIdentifier(&nodes)
            }
            guard let (kdfOID, kdfParameters) = kdf, let (cipherOID, cipherParameters) = cipher else {
                throw KeyLoadError.malformedKey(format: "encrypted PKCS#8")
            }
            guard kdfOID == OID.pbkdf2, let kdfParameters else {
                throw KeyLoadError.unsupportedEncryption("key derivation \(kdfOID) (only PBKDF2)")
            }

            switch cipherOID {
            case OID.aes128CBC: self.keyByteCount = 16
            case OID.aes192CBC: self.keyByteCount = 24
            case OID.aes256CBC: self.keyByteCount = 32
            default: throw KeyLoadError.unsupportedEncryption("cipher \(cipherOID) (only AES-CBC)")
            }
            guard let cipherParameters else { throw KeyLoadError.malformedKey(format: "encrypted PKCS#8") }
            self.iv = Array(try ASN1OctetString(derEncoded: cipherParameters).bytes)

            var salt: [UInt8] = []
            var iterations = 0
            var explicitKeyLength: Int?
            var prf = PRF.hmacSHA1
            try DER.sequence(kdfParameters, identifier: .sequence) { nodes in
                salt = Array(try ASN1OctetString(derEncoded: &nodes).bytes)
                iterations = try Int(derEncoded: &nodes)
                while let node = nodes.next() {
                    if node.identifier == .integer {
                        explicitKeyLength = try Int(derEncoded: node)
                    } else {
                        let (prfOID, _) = try Self.algorithmIdentifier(node)
                        switch prfOID {
                        case OID.hmacSHA1: prf = .hmacSHA1
                        case OID.hmacSHA256: prf = .hmacSHA256
                        case OID.hmacSHA384: prf = .hmacSHA384
                        case OID.hmacSHA512: prf = .hmacSHA512
                        default: throw KeyLoadError.unsupportedEncryption("PBKDF2 PRF \(prfOID)")
                        }
                    }
                }
            }
            guard iterations > 0, iterations <= Self.maximumIterations else {
                throw KeyLoadError.unsupportedEncryption("PBKDF2 iteration count \(iterations)")
            }
            if let explicitKeyLength, explicitKeyLength != keyByteCount {
                throw KeyLoadError.malformedKey(format: "encrypted PKCS#8")
            }
            self.salt = salt
            self.iterations = iterations
            self.prf = prf
        } catch let error as KeyLoadError {
            throw error
        } catch {
            throw KeyLoadError.malformedKey(format: "encrypted PKCS#8")
        }
    }

    /// Returns the inner PKCS#8 `PrivateKeyInfo` DER. A wrong passphrase shows up as bad padding
    /// or as plaintext that is not DER; both become `KeyLoadError.wrongPassphrase`.
    func decrypt(passphrase: String) throws -> [UInt8] {
        let plaintext: Data
        do {
            let key = try KDF.Insecure.PBKDF2.deriveKey(
                from: Array(passphrase.utf8),
                salt: salt,
                using: prf.hashFunction,
                outputByteCount: keyByteCount,
                unsafeUncheckedRounds: iterations
            )
            plaintext = try AES._CBC.decrypt(encryptedData, using: key, iv: AES._CBC.IV(ivBytes: iv))
        } catch {
            throw KeyLoadError.wrongPassphrase
        }
        let bytes = [UInt8](plaintext)
        guard (try? DER.parse(bytes)) != nil else { throw KeyLoadError.wrongPassphrase }
        return bytes
    }

    /// Reads `AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }`.
    static func algorithmIdentifier(
        _ nodes: inout ASN1NodeCollection.Iterator
    ) throws -> (ASN1ObjectIdentifier, ASN1Node?) {
        guard let node = nodes.next() else { throw KeyLoadError.malformedKey(format: "PKCS#8") }
        return try algorithmIdentifier(node)
    }

    /// Reads one `AlgorithmIdentifier` node.
    static func algorithmIdentifier(_ node: ASN1Node) throws -> (ASN1ObjectIdentifier, ASN1Node?) {
        try DER.sequence(node, identifier: .sequence) { inner in
            let oid = try ASN1ObjectIdentifier(derEncoded: &inner)
            return (oid, inner.next())
        }
    }
}
