import CalloutCore
import CalloutTokens
import Foundation
import Logging
import NIOCore
import NIOPosix

/// Everything a callout needs around the proxy, on loopback and generated fresh: a TLS
/// certificate authority, a signing key pair, a development identity provider that verifies
/// assertions with that key, and an HTTPS echo upstream that accepts only tokens the identity
/// provider issued. Used by `demo` and the end-to-end tests.
public final class LocalEnvironment: Sendable {
    public let directory: URL
    public let identityProvider: DevelopmentIdentityProvider
    public let upstream: EchoUpstream
    /// PEM trust root for the identity provider and the upstream (`ca_file`).
    public let caFile: String
    public let signingKeyFile: String
    public let signingCertificateFile: String
    public let signingKey: SigningKey

    /// - Parameters:
    ///   - clientIds: the client ids the identity provider accepts, all verified with the generated key.
    ///   - algorithm: the signing algorithm the identity provider allows for them.
    ///   - registrations: clients of the client-secret, TLS certificate and JWT bearer flows.
    public static func start(
        clientIds: [String], algorithm: SigningAlgorithm = .rs256, tokenLifetimeSeconds: Int = 300,
        registrations: [String: DevelopmentIdentityProvider.ClientRegistration] = [:],
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "callout.local-environment", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> LocalEnvironment {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "callout-proxy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let pki = try DevelopmentPKI.generate()
        let files = try pki.write(to: directory)
        let signing = try DevelopmentPKI.generateSigningIdentity(
            keyType: algorithm.keyType, commonName: "callout-proxy local signing key")
        let (keyFile, certificateFile) = try signing.write(to: directory, baseName: "signing")
        let material = try SigningMaterial.load(
            privateKeyPEM: signing.privateKeyPEM, certificatePEM: signing.certificatePEM, passphrase: nil)
        let clients = ConfiguredClients(
            clientIds.map { (clientId: $0, key: material.key.verificationKey, algorithm: algorithm, audience: nil) })
        let tls = DevelopmentTLSMaterial(certificatePEM: pki.leafCertificatePEM, privateKeyPEM: pki.leafPrivateKeyPEM)
        var idpConfiguration = DevelopmentIdentityProvider.Configuration()
        idpConfiguration.tls = tls
        idpConfiguration.expiresIn = tokenLifetimeSeconds
        let idp = try await DevelopmentIdentityProvider.start(
            configuration: idpConfiguration, clients: clients.clientIds, verifier: clients.verifier(),
            registrations: registrations, group: group,
            logger: logger)
        do {
            let upstream = try await EchoUpstream.start(
                configuration: .init(tls: tls), tokenCheck: { idp.isValid(token: $0) != nil }, group: group,
                logger: logger)
            return LocalEnvironment(
                directory: directory, identityProvider: idp, upstream: upstream, caFile: files.caCertificate.path,
                signingKeyFile: keyFile.path, signingCertificateFile: certificateFile.path, signingKey: material.key)
        } catch {
            try? await idp.shutdown()
            throw error
        }
    }

    private init(
        directory: URL, identityProvider: DevelopmentIdentityProvider, upstream: EchoUpstream, caFile: String,
        signingKeyFile: String, signingCertificateFile: String, signingKey: SigningKey
    ) {
        self.directory = directory
        self.identityProvider = identityProvider
        self.upstream = upstream
        self.caFile = caFile
        self.signingKeyFile = signingKeyFile
        self.signingCertificateFile = signingCertificateFile
        self.signingKey = signingKey
    }

    /// `[proxy]` settings and the `[[certificate]]` for the generated key, to start a config with.
    public func baseConfiguration(
        listen: String = "127.0.0.1:0", adminListen: String = "off", extraProxySettings: String = ""
    ) -> String {
        """
        [proxy]
        listen = "\(listen)"
        admin_listen = "\(adminListen)"
        ca_file = "\(caFile)"
        \(extraProxySettings)

        [[certificate]]
        name = "Local_Signing"
        private_key_file = "\(signingKeyFile)"
        certificate_file = "\(signingCertificateFile)"

        """
    }

    /// Stops the servers and deletes the generated files.
    public func shutdown() async {
        try? await upstream.shutdown()
        try? await identityProvider.shutdown()
        try? FileManager.default.removeItem(at: directory)
    }
}
