import CalloutCore
import CalloutTokens
import Crypto
import Foundation
import _CryptoExtras

/// Helpers shared by the signing tests: fresh keys, a temp directory, and the `openssl` CLI.
public enum SigningTestSupport {
    /// The path of `openssl`, or `nil` when it is not installed.
    public static let opensslPath: String? = {
        for directory in ["/usr/bin", "/usr/local/bin", "/opt/homebrew/bin", "/bin"] {
            let path = directory + "/openssl"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }()

    /// Runs `openssl` with `arguments`; returns standard output, or throws with the exit status.
    @discardableResult
    public static func openssl(_ arguments: [String]) throws -> String {
        guard let opensslPath else { throw OpenSSLFailure(status: -1) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: opensslPath)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw OpenSSLFailure(status: process.terminationStatus) }
        return String(decoding: data, as: UTF8.self)
    }

    public struct OpenSSLFailure: Error { let status: Int32 }

    /// A new empty directory under the system temp directory.
    public static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("callout-signing-tests-\(UUID().uuidString.lowercased())")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// One RSA-2048 key generated per test process (RSA generation is slow).
    public static let rsaKey: _RSA.Signing.PrivateKey = {
        do { return try _RSA.Signing.PrivateKey(keySize: .bits2048) } catch { fatalError("RSA key generation failed") }
    }()

    public static let p256Key = P256.Signing.PrivateKey()

    public static func material(_ pem: String, certificatePEM: String? = nil) throws -> SigningMaterial {
        try SigningMaterial.load(privateKeyPEM: pem, certificatePEM: certificatePEM, passphrase: nil)
    }

    public static func request(
        _ algorithm: SigningAlgorithm, jti: String = UUID().uuidString.lowercased(), now: Int64 = 1_700_000_000,
        claims: [(name: String, value: String)] = [], headerEntries: [(name: String, value: String)] = []
    ) -> AssertionRequest {
        AssertionRequest(
            clientId: "client-123", audience: "https://idp.example.test/oauth2/token", algorithm: algorithm,
            now: now, jti: jti, claims: claims, headerEntries: headerEntries)
    }

    /// Lines of base64 body of every PEM block in `pem` (to check errors never echo them).
    public static func pemBodyLines(_ pem: String) -> [String] {
        pem.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("-----") && $0.count >= 16 }
    }
}
