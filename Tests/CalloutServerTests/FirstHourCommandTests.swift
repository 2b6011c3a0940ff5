import AsyncHTTPClient
import CalloutCore
import CalloutServer
import CalloutTokens
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

/// The commands a new user runs first: version, check for scripts, token failures, a port in
/// use, a missing configuration file.
@Suite(.serialized) struct FirstHourCommandTests {
    @Test func versionPrintsTheVersionCommitAndCompiler() throws {
        let command = try runCLI(["version"])
        let flag = try runCLI(["--version"])
        #expect(command.status == 0)
        #expect(command.out == flag.out)
        let line = command.out.trimmingCharacters(in: .newlines)
        #expect(line.hasPrefix("callout-proxy \(CalloutProxyVersion.current) (commit "), "\(line)")
        #expect(line.hasSuffix(", Swift \(CalloutProxyVersion.swiftCompiler))"), "\(line)")
        // Built from this git checkout: the commit is known.
        #expect(!line.contains("commit unknown"), "\(line)")
    }

    @Test func checkFormatJSONAndQuiet() throws {
        let env = try LocalEnvironmentFiles()
        defer { env.remove() }
        let json = try runCLI(["check", "--format", "json", "--config", try env.config()])
        #expect(json.status == 0, "\(json.err)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any])
        #expect(report["valid"] as? Bool == true)
        #expect(report["problems"] as? Int == 0)
        #expect((report["issues"] as? [Any])?.isEmpty == true)

        let bad = try env.config(keyFile: env.directory.appendingPathComponent("absent.pem").path)
        let failed = try runCLI(["check", "--format", "json", "--config", bad])
        #expect(failed.status == 1)
        let badReport = try #require(try JSONSerialization.jsonObject(with: Data(failed.out.utf8)) as? [String: Any])
        #expect(badReport["valid"] as? Bool == false)
        let issue = try #require((badReport["issues"] as? [[String: Any]])?.first)
        #expect(issue["key_path"] as? String == "certificate[0].private_key_file")
        #expect(issue["line"] as? Int == 3)
        #expect(issue["message"] as? String == "cannot read '\(env.directory.path)/absent.pem': no such file")

        let quiet = try runCLI(["check", "--quiet", "--config", bad])
        #expect(quiet.status == 1)
        #expect(quiet.out.isEmpty && quiet.err.isEmpty)
        let quietGood = try runCLI(["check", "-q", "--config", try env.config()])
        #expect(quietGood.status == 0 && quietGood.out.isEmpty && quietGood.err.isEmpty)
    }

    @Test func checkWarnsAboutAKeyOthersCanRead() throws {
        let env = try LocalEnvironmentFiles()
        defer { env.remove() }
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: env.keyFile)
        let r = try runCLI(["check", "--config", try env.config()])
        #expect(r.status == 0, "\(r.err)")
        #expect(
            r.err.contains(
                "warning: \(env.directory.path)/cli.conf:3: certificate[0].private_key_file: '\(env.keyFile)' is readable by group and others (mode 0644); restrict it with chmod 600"
            ), "\(r.err)")
    }

    @Test func aMissingConfigurationFileSaysWhereItLooked() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("none-\(UUID().uuidString)")
        let r = try runCLI(["check", "--config", folder.appendingPathComponent("proxy.conf").path])
        #expect(r.status == 1)
        #expect(
            r.err.contains(
                "configuration file not found: looked for \(folder.path)/proxy.conf (given with --config)"),
            "\(r.err)")
        let fromEnvironment = try runCLI(
            ["check"], environment: ["CALLOUT_PROXY_CONFIG": folder.appendingPathComponent("env.conf").path])
        #expect(fromEnvironment.err.contains("(given by $CALLOUT_PROXY_CONFIG)"), "\(fromEnvironment.err)")
    }

    @Test func tokenPrintsAFailureOnceAndNoUsage() throws {
        let env = try LocalEnvironmentFiles()
        defer { env.remove() }
        // identity_provider_url is https://127.0.0.1:1/token: refused.
        let refused = try runCLI(["token", "Acme_API", "--config", try env.config()])
        #expect(refused.status == 1)
        #expect(
            refused.err
                == "identity_provider_unavailable: external_credential Acme_API, principal Reader: identity provider unreachable: connection refused\n"
        )
        #expect(!refused.err.contains("Usage:"))
        let unknown = try runCLI(["token", "Acme_AP", "--config", try env.config()])
        #expect(unknown.status != 0)
        #expect(unknown.err.contains("no external credential is named 'Acme_AP' (known: Acme_API)"))
        #expect(!unknown.err.contains("Usage:"), "\(unknown.err)")
    }

    @Test func aPortInUseNamesTheAddressAndTheSetting() async throws {
        let taken = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(taken.localAddress?.port)
        let env = try LocalEnvironmentFiles()
        defer { env.remove() }
        let file = try env.config()
        let text = try String(contentsOfFile: file, encoding: .utf8)
        try ("[proxy]\nlisten = \"127.0.0.1:\(port)\"\nadmin_listen = \"off\"\n\n" + text)
            .write(toFile: file, atomically: true, encoding: .utf8)
        let r = try runCLI(["serve", "--config", file, "--log-format", "human"])
        try await taken.close()
        #expect(r.status == 1)
        #expect(
            r.err.contains(
                "cannot listen on 127.0.0.1:\(port) (proxy.listen): address already in use (another process listens there; choose another port)"
            ), "\(r.err)")
    }

    @Test(.timeLimit(.minutes(1))) func aRefusedIdentityProviderFailsAtOnce() async throws {
        let closed = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(closed.localAddress?.port)
        try await closed.close()
        // Long timeouts: only a refusal reported at once gives "connection refused" in time.
        var settings = ProxySettings()
        settings.connectTimeoutSeconds = 120
        settings.requestTimeoutSeconds = 120
        let httpClient = IdentityProviderHTTPClient.make(
            settings: settings, materials: CredentialMaterials(), eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        let client = TokenEndpointClient(
            httpClient: httpClient, limits: .init(timeout: .seconds(120)),
            logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }))
        do {
            _ = try await client.fetchToken(
                TokenRequest(
                    identityProviderURL: "http://127.0.0.1:\(port)/token", clientId: "c", clientAssertion: "a.b.c"))
            Issue.record("expected a refusal")
        } catch let error as TokenExchangeError {
            #expect(error == .unreachable("connection refused"))
        }
        try await httpClient.shutdown()
    }
}
