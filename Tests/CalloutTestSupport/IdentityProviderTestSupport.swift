import AsyncHTTPClient
import CalloutDevTools
import CalloutTokens
import Crypto
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// Opens once; everyone waiting (before or after) proceeds.
public final class Gate: Sendable {
    public init() {}

    private let state = LockedState<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>(
        (false, []))

    public func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let proceed = state.withLock { state in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if proceed { continuation.resume() }
        }
    }

    public func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// A clock the test moves by hand.
public final class ManualClock: Sendable {
    public init() {}

    private let state = LockedState<Double>(0)
    public var now: Double { state.withLock { $0 } }
    public func set(_ value: Double) { state.withLock { $0 = value } }
    public var read: @Sendable () -> Double { { self.now } }
}

/// Keeps every log line, rendered with its metadata, for leak checks.
public final class CapturingLogs: Sendable {
    public init() {}

    private let lines = LockedState<[String]>([])

    public var all: [String] { lines.withLock { $0 } }

    public func logger(_ label: String = "test") -> Logger {
        var logger = Logger(label: label) { _ in Handler(sink: self) }
        logger.logLevel = .trace
        return logger
    }

    fileprivate func append(_ line: String) { lines.withLock { $0.append(line) } }

    private struct Handler: LogHandler {
        let sink: CapturingLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            let rendered = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(
                separator: " ")
            sink.append("\(event.level) \(event.message) \(rendered)")
        }
    }
}

/// ES256 client assertions and a verifier for them, standing in for the signing module.
public final class AssertionKit: Sendable {
    public let clientId: String
    public let key = P256.Signing.PrivateKey()
    private let seenIDs = LockedState<Set<String>>([])

    public init(clientId: String = "client-1") { self.clientId = clientId }

    public func assertion(
        audience: String, jti: String = UUID().uuidString, lifetime: Double = 120,
        extra: [String: String] = [:]
    )
        -> String
    {
        let now = Date().timeIntervalSince1970
        var claims: [String: Any] = [
            "iss": clientId, "sub": clientId, "aud": audience, "jti": jti,
            "iat": Int(now), "exp": Int(now + lifetime),
        ]
        for (name, value) in extra { claims[name] = value }
        let header = Base64URL.encode(Array(#"{"alg":"ES256","typ":"JWT"}"#.utf8))
        let payload = Base64URL.encode(
            Array(try! JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys])))
        let signingInput = header + "." + payload
        let signature = try! key.signature(for: Array(signingInput.utf8)).rawRepresentation
        return signingInput + "." + Base64URL.encode(Array(signature))
    }

    /// Checks signature, iss/sub, aud, exp and that the jti was not seen before.
    public var verifier: DevelopmentIdentityProvider.VerifyAssertion {
        let publicKey = key.publicKey
        let expected = clientId
        return { [seenIDs] clientId, assertion, audience in
            let parts = assertion.split(separator: ".", omittingEmptySubsequences: false)
            guard clientId == expected, parts.count == 3,
                let signatureBytes = Base64URL.decode(parts[2]),
                let signature = try? P256.Signing.ECDSASignature(rawRepresentation: signatureBytes),
                publicKey.isValidSignature(signature, for: Array("\(parts[0]).\(parts[1])".utf8))
            else { return .failure(.init("bad signature")) }
            guard let claims = JWTPayload.claims(of: assertion) else {
                return .failure(.init("bad payload"))
            }
            guard claims["iss"]?.stringValue == clientId, claims["sub"]?.stringValue == clientId else {
                return .failure(.init("iss/sub must be the client id"))
            }
            guard claims["aud"]?.stringValue == audience else { return .failure(.init("wrong audience")) }
            guard let exp = claims["exp"]?.doubleValue, exp > Date().timeIntervalSince1970 else {
                return .failure(.init("expired"))
            }
            guard let jti = claims["jti"]?.stringValue, seenIDs.withLock({ $0.insert(jti).inserted })
            else {
                return .failure(.init("jti replayed"))
            }
            return .success(())
        }
    }
}

/// A TLS development identity provider on 127.0.0.1 and an HTTPClient that trusts it.
public struct IdentityProviderFixture: Sendable {
    public let provider: DevelopmentIdentityProvider
    public let httpClient: HTTPClient
    public let kit: AssertionKit
    public let logs: CapturingLogs

    public static func with<T>(
        expiresIn: Int = 300,
        _ body: (IdentityProviderFixture) async throws -> T
    ) async throws -> T {
        let tls = try DevelopmentTLSMaterial.selfSignedLoopback()
        let kit = AssertionKit()
        let logs = CapturingLogs()
        let provider = try await DevelopmentIdentityProvider.start(
            configuration: .init(expiresIn: expiresIn, tls: tls),
            clients: [kit.clientId],
            verifier: kit.verifier,
            logger: logs.logger("idp"))
        var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
        tlsConfiguration.trustRoots = .certificates(
            try NIOSSLCertificate.fromPEMBytes(Array(tls.certificatePEM.utf8)))
        let httpClient = HTTPClient(
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            configuration: HTTPClient.Configuration(
                tlsConfiguration: tlsConfiguration, redirectConfiguration: .disallow))
        let fixture = IdentityProviderFixture(
            provider: provider, httpClient: httpClient, kit: kit, logs: logs)
        do {
            let result = try await body(fixture)
            try await httpClient.shutdown()
            try await provider.shutdown()
            return result
        } catch {
            try? await httpClient.shutdown()
            try? await provider.shutdown()
            throw error
        }
    }

    public func client(timeout: Duration = .seconds(10)) -> TokenEndpointClient {
        TokenEndpointClient(
            httpClient: httpClient, limits: .init(timeout: timeout), logger: logs.logger("exchange"))
    }

    public func request(scope: String? = "api read", assertion: String? = nil) -> TokenRequest {
        TokenRequest(
            identityProviderURL: provider.tokenEndpointURL, clientId: kit.clientId,
            clientAssertion: assertion ?? kit.assertion(audience: provider.tokenEndpointURL),
            scope: scope,
            externalCredential: "Acme", principal: "Sales", assertionID: "jti-log")
    }
}
