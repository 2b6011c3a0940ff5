import CalloutCore
import Crypto
import Foundation

/// A principal's client secret, read from its environment variable or file at start and on every
/// reload. Its description and mirror never show it; ``fingerprint`` tells two secrets apart (the
/// cache key, reload) without holding one.
public struct ClientSecret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// The secret itself: for the token request only.
    public let value: String

    public init(_ value: String) { self.value = value }

    /// A digest of the secret under a fixed label: equal for equal secrets, and no use for
    /// guessing one (it is kept in memory only, in cache keys).
    public var fingerprint: String {
        Hex.encode(SHA256.hash(data: Array("callout-proxy client secret\u{0}".utf8) + Array(value.utf8)).prefix(16))
    }

    public var description: String { "ClientSecret(<redacted>)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["value": "<redacted>"], displayStyle: .struct) }

    /// The materials' key for a principal's secret.
    static func key(credential: String, principal: String) -> String {
        credential.lowercased() + "\u{0}" + principal.lowercased()
    }

    /// Reads every secret `config` names. Problems name the variable or the file, never a value.
    static func load(_ config: ProxyConfig, environment: [String: String]) -> ([String: ClientSecret], [ConfigIssue]) {
        var secrets: [String: ClientSecret] = [:]
        var issues: [ConfigIssue] = []
        for credential in config.externalCredentials where credential.clientAuthentication.usesClientSecret {
            for principal in credential.principals {
                guard let source = principal.clientSecret else { continue }
                switch read(source, environment: environment) {
                case .success(let secret):
                    secrets[key(credential: credential.name, principal: principal.name)] = secret
                case .failure(let message):
                    issues.append(config.issue(source.keyPath, message.text))
                }
            }
        }
        return (secrets, issues)
    }

    struct Failure: Error { let text: String }

    static func read(_ source: ClientSecretSource, environment: [String: String]) -> Result<ClientSecret, Failure> {
        switch source.kind {
        case .environment(let name):
            guard let value = environment[name] else {
                return .failure(Failure(text: "environment variable \(name) is not set"))
            }
            guard !value.isEmpty else { return .failure(Failure(text: "environment variable \(name) is empty")) }
            guard !value.contains(where: \.isNewline) else {
                return .failure(Failure(text: "environment variable \(name) holds a line break"))
            }
            return .success(ClientSecret(value))
        case .file(let path):
            let text: String
            do throws(KeyLoadError) {
                text = try SigningMaterial.readText(path)
            } catch {
                return .failure(Failure(text: error.description))
            }
            // One trailing line break (as editors and `echo` write) is not part of the secret.
            var value = Substring(text)
            if value.hasSuffix("\n") { value = value.dropLast() }
            if value.hasSuffix("\r") { value = value.dropLast() }
            guard !value.isEmpty else { return .failure(Failure(text: "'\(path)' is empty")) }
            guard !value.contains(where: \.isNewline) else {
                return .failure(Failure(text: "'\(path)' holds more than one line; a client secret is one line"))
            }
            return .success(ClientSecret(String(value)))
        }
    }
}
