import AsyncHTTPClient
import CalloutCore
import Foundation
import Logging
import NIOPosix
import NIOSSL
import Testing

@testable import CalloutDevTools
@testable import CalloutTokens

/// Messages about files, TLS and the development identity provider that a new user meets.
@Suite struct FirstHourMessageTests {
    func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("first-hour-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test func aMissingCAFileIsReportedLikeAMissingKey() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let garbage = directory.appendingPathComponent("garbage.pem")
        try Data("not a certificate\n".utf8).write(to: garbage)
        var config = ProxyConfig(sourceFile: "proxy.conf")
        config.proxy.caFiles = [directory.appendingPathComponent("absent.pem").path, garbage.path]
        do {
            _ = try CredentialMaterials.load(config, environment: [:])
            Issue.record("expected problems")
        } catch {
            #expect(
                error.issues.map(\.description) == [
                    "proxy.conf: proxy.ca_file[0]: cannot read '\(directory.path)/absent.pem': no such file",
                    "proxy.conf: proxy.ca_file[1]: '\(garbage.path)' holds no PEM certificate",
                ])
        }
    }

    @Test func severalCAFilesAreAllTrusted() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var config = ProxyConfig()
        for name in ["one", "two"] {
            let file = directory.appendingPathComponent("\(name).pem")
            try Data(try DevelopmentPKI.generate().caCertificatePEM.utf8).write(to: file)
            config.proxy.caFiles.append(file.path)
        }
        let materials = try CredentialMaterials.load(config, environment: [:])
        #expect(materials.additionalTrustRoots.count == 2)
    }

    @Test func keyFilesReadableByOthersAreWarnedAbout() throws {
        #expect(KeyFilePermissions.warning(path: "/k.pem", mode: 0o600) == nil)
        #expect(KeyFilePermissions.warning(path: "/k.pem", mode: 0o400) == nil)
        #expect(
            KeyFilePermissions.warning(path: "/k.pem", mode: 0o100644)
                == "'/k.pem' is readable by group and others (mode 0644); restrict it with chmod 600")
        #expect(
            KeyFilePermissions.warning(path: "/k.pem", mode: 0o640)
                == "'/k.pem' is readable by group (mode 0640); restrict it with chmod 600")

        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = directory.appendingPathComponent("signing.key")
        try Data("key".utf8).write(to: key)
        try FileManager.default.setAttributes([.posixPermissions: 0o604], ofItemAtPath: key.path)
        var config = ProxyConfig(sourceFile: "proxy.conf")
        config.certificates = [CertificateConfig(name: "Signing", privateKeyFile: key.path)]
        #expect(
            KeyFilePermissions.warnings(config).map(\.description) == [
                "proxy.conf: certificate[0].private_key_file: '\(key.path)' is readable by others (mode 0604); restrict it with chmod 600"
            ])
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key.path)
        #expect(KeyFilePermissions.warnings(config).isEmpty)
    }

    @Test func tlsReasonsLoseTheLibraryNumbersAndPaths() {
        #expect(
            TLSFailureText.reasonName(
                in:
                    "Error: 268435581 error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at /build/x/.build/checkouts/swift-nio-ssl/Sources/CNIOBoringSSL/ssl/handshake.cc:393"
            ) == "certificate verify failed")
        #expect(TLSFailureText.reasonName(in: "Error:  EOF during handshake") == "EOF during handshake")
        #expect(
            TLSFailureText.describe(NIOSSLExtraError.failedToValidateHostname, peer: "identity provider")
                == "TLS handshake failed: the certificate is not for this host name (is the identity provider's certificate trusted? see ca_file)"
        )
        #expect(TLSFailureText.describe(CancellationError(), peer: "identity provider") == nil)
    }

    @Test func anUntrustedIdentityProviderSaysWhereToLook() async throws {
        // The identity provider's CA is not trusted: no ca_file.
        let env = try await LocalEnvironment.start(clientIds: ["acme-reader"])
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5)))
        configuration.connectionPool.retryConnectionEstablishment = false
        let httpClient = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
        let client = TokenEndpointClient(
            httpClient: httpClient, logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }))
        do {
            _ = try await client.fetchToken(
                TokenRequest(
                    identityProviderURL: env.identityProvider.tokenEndpointURL, clientId: "acme-reader",
                    clientAssertion: "a.b.c"))
            Issue.record("expected a TLS failure")
        } catch let error as TokenExchangeError {
            #expect(
                error.description
                    == "identity provider unreachable: TLS handshake failed: certificate verify failed (is the identity provider's certificate trusted? see ca_file)"
            )
        }
        try await httpClient.shutdown()
        await env.shutdown()
    }

    @Test func theAudienceNoteTreatsLocalhostAsTheListenersLoopbackAddress() {
        #expect(EndpointURLMatch.same("https://localhost:9443/token", "https://127.0.0.1:9443/token"))
        #expect(EndpointURLMatch.same("https://127.0.0.1:9443/token", "https://localhost:9443/token"))
        #expect(EndpointURLMatch.same("https://localhost:9443/token", "https://[::1]:9443/token"))
        #expect(!EndpointURLMatch.same("https://localhost:9444/token", "https://127.0.0.1:9443/token"))
        #expect(!EndpointURLMatch.same("https://localhost:9443/other", "https://127.0.0.1:9443/token"))
        #expect(!EndpointURLMatch.same("https://idp.example:9443/token", "https://127.0.0.1:9443/token"))
    }

    @Test func aKeptCAIsReusedAndIssuesNewServerCertificates() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = try DevelopmentCA.kept(in: directory)
        let second = try DevelopmentCA.kept(in: directory)
        #expect(first.created)
        #expect(!second.created)
        #expect(first.authority.certificate == second.authority.certificate)
        let mode = try FileManager.default.attributesOfItem(
            atPath: directory.appendingPathComponent(DevelopmentCA.FileName.privateKey).path)[.posixPermissions]
        #expect((mode as? NSNumber)?.intValue == 0o600)
        let pki = try DevelopmentPKI.generate(authority: second.authority)
        #expect(pki.caCertificatePEM == (try first.authority.certificate.serializeAsPEM().pemString))
        // The next day: a CA about to expire is replaced.
        let later = try DevelopmentCA.kept(in: directory, now: Date().addingTimeInterval(366 * 24 * 3600))
        #expect(later.created)
    }
}
