import ArgumentParser
import CalloutCore
import CalloutDevTools
import CalloutTokens
import Foundation
import Logging
import UnixSignals

struct DevIdPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-idp",
        abstract: "Run a development identity provider for the configured principals (local testing only).",
        discussion: """
            Serves an OAuth 2.0 token endpoint (client credentials with a JWT assertion) over HTTPS. \
            Every principal's client id of every external credential is registered with the public key \
            of the credential's signing certificate; assertions are checked for signature, algorithm, \
            audience (the identity_provider_url, or a constant jwt_claims.aud), iss/sub, time claims and \
            jti replay. Point identity_provider_url at the printed token endpoint and trust the printed \
            CA file with proxy.ca_file. Runs until SIGINT or SIGTERM. Never use it in production.
            """
    )

    @OptionGroup var options: ConfigOption

    @Option(help: "Address to listen on (HOST:PORT).")
    var listen: String = "127.0.0.1:9443"

    @Option(help: "Lifetime of issued access tokens, in seconds (expires_in).")
    var tokenLifetime: Int = 300

    @Option(help: "TLS server certificate (PEM). Without it, an ephemeral localhost certificate is made.")
    var tlsCert: String?

    @Option(help: "TLS server private key (PEM), with --tls-cert.")
    var tlsKey: String?

    @Option(
        help: ArgumentHelp(
            "Keep the development CA in this folder (ca.pem, ca-key.pem) between restarts.",
            discussion:
                "Without it, the CA is made anew in a temporary folder and removed on exit, so a ca_file that trusted it no longer loads."
        ))
    var caDir: String?

    func validate() throws {
        guard HostPort(parsing: listen) != nil else {
            throw ValidationError("--listen must be HOST:PORT or [IPv6]:PORT, got '\(listen)'")
        }
        guard tokenLifetime > 0 else { throw ValidationError("--token-lifetime must be positive") }
        guard (tlsCert == nil) == (tlsKey == nil) else {
            throw ValidationError("--tls-cert and --tls-key go together")
        }
        guard caDir == nil || tlsCert == nil else {
            throw ValidationError("--ca-dir makes the server certificate; leave out --tls-cert and --tls-key")
        }
    }

    func run() async throws {
        var stderr = StandardError()
        let clients: ConfiguredClients
        do {
            let config = try options.load()
            let materials = try CredentialMaterials.load(config)
            clients = try ConfiguredClients(config: config, materials: materials)
        } catch let error as ConfigError {
            for issue in error.issues { print(issue.description, to: &stderr) }
            throw ExitCode(1)
        } catch {
            print("dev-idp: \(error)", to: &stderr)
            throw ExitCode(1)
        }
        guard let address = HostPort(parsing: listen) else { throw ExitCode(1) }

        let tls: DevelopmentTLSMaterial
        var temporaryDirectory: URL?
        var caFile: (path: String, note: String)?
        if let tlsCert, let tlsKey {
            do {
                tls = DevelopmentTLSMaterial(
                    certificatePEM: try String(contentsOfFile: tlsCert, encoding: .utf8),
                    privateKeyPEM: try String(contentsOfFile: tlsKey, encoding: .utf8))
            } catch {
                print("dev-idp: cannot read --tls-cert or --tls-key", to: &stderr)
                throw ExitCode(1)
            }
        } else if let caDir {
            let directory = URL(fileURLWithPath: caDir)
            let kept: (authority: DevelopmentCA, created: Bool)
            do {
                kept = try DevelopmentCA.kept(in: directory)
            } catch {
                print("dev-idp: --ca-dir \(caDir): \(error)", to: &stderr)
                throw ExitCode(1)
            }
            let pki = try DevelopmentPKI.generate(authority: kept.authority)
            tls = DevelopmentTLSMaterial(certificatePEM: pki.leafCertificatePEM, privateKeyPEM: pki.leafPrivateKeyPEM)
            caFile = (
                directory.appendingPathComponent(DevelopmentCA.FileName.certificate).path,
                kept.created ? "made now; kept for the next start" : "kept from an earlier start"
            )
        } else {
            let pki = try DevelopmentPKI.generate()
            tls = DevelopmentTLSMaterial(certificatePEM: pki.leafCertificatePEM, privateKeyPEM: pki.leafPrivateKeyPEM)
            let directory = FileManager.default.temporaryDirectory
                .appendingPathComponent("callout-dev-idp-\(UUID().uuidString.lowercased())")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let file = directory.appendingPathComponent(DevelopmentPKI.FileName.caCertificate)
            temporaryDirectory = directory
            try Data(pki.caCertificatePEM.utf8).write(to: file)
            caFile = (file.path, "removed on exit; --ca-dir DIR keeps one")
        }
        // Without --ca-dir the CA is ephemeral: it means nothing once this server is gone.
        defer { if let temporaryDirectory { try? FileManager.default.removeItem(at: temporaryDirectory) } }

        var logger = Logger(
            label: "callout.dev-idp", factory: { label in StreamLogHandler.standardError(label: label) })
        logger.logLevel = .info
        let provider = try await DevelopmentIdentityProvider.start(
            configuration: .init(host: address.host, port: address.port, expiresIn: tokenLifetime, tls: tls),
            clients: clients.clientIds, verifier: clients.verifier(), registrations: clients.registrations,
            logger: logger)

        var banner = ["DEVELOPMENT IDENTITY PROVIDER — for local testing only, never production"]
        banner.append("token endpoint: \(provider.tokenEndpointURL) (issuer \(provider.baseURL))")
        if let caFile { banner.append("CA certificate (trust it with proxy.ca_file; \(caFile.note)): \(caFile.path)") }
        banner.append("token lifetime: \(tokenLifetime) s")
        let ids = clients.clientIds.sorted()
        banner.append("registered client ids (\(ids.count)): \(ids.isEmpty ? "none" : ids.joined(separator: ", "))")
        if !clients.registrations.isEmpty {
            let others = clients.registrations.keys.sorted()
            banner.append(
                "client ids of the client-secret, TLS certificate and JWT bearer flows (\(others.count)): \(others.joined(separator: ", "))"
            )
        }
        for audience in Set(clients.clients.compactMap(\.audience)).sorted()
        where !EndpointURLMatch.same(audience, provider.tokenEndpointURL) {
            banner.append("note: assertions with aud \(audience) are accepted, but that is not this endpoint's URL")
        }
        banner.append("stop with Ctrl-C (SIGINT) or SIGTERM")
        Self.say(banner.joined(separator: "\n"))

        let signal = await Self.waitForTerminationSignal()
        Self.say("received \(signal), shutting down")
        try await provider.shutdown()
    }

    /// Writes a line to standard output at once (unbuffered, also when redirected to a file).
    private static func say(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    /// Suspends until SIGINT or SIGTERM arrives; returns which one.
    private static func waitForTerminationSignal() async -> UnixSignal {
        for await signal in await UnixSignalsSequence(trapping: .sigint, .sigterm) { return signal }
        return .sigterm
    }
}
