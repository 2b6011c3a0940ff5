import AsyncHTTPClient
import CalloutDevTools
import Foundation
import NIOCore
import Testing

@testable import CalloutServer

/// `serve` follows its configuration and keys on disk as Kubernetes updates them (a `..data`
/// symlink swap, no signal), and stops cleanly on a SIGTERM during start-up.
@Suite(.serialized) struct ConfigWatchTests {
    /// The standard configuration with the signing key and certificate named relative to the
    /// configuration file, as in a mounted volume, and the X-Tenant header set to `tenant`.
    static func config(_ env: LocalEnvironment, tenant: String) -> String {
        ReloadTests.config(env, tenant: tenant)
            .replacingOccurrences(of: env.signingKeyFile, with: "signing.key")
            .replacingOccurrences(of: env.signingCertificateFile, with: "signing.crt")
    }

    static func files(_ config: String, key: String, certificate: String) -> [String: String] {
        ["proxy.conf": config, "signing.key": key, "signing.crt": certificate]
    }

    struct Answer: Equatable {
        let status: Int
        let tenant: String?
    }

    struct Client {
        let http = HTTPClient.shared
        let port: Int
        let adminPort: Int

        /// A callout as principal Reader: status and the X-Tenant header the upstream saw.
        func callout(_ path: String) async throws -> Answer {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/callout:Acme/\(path)")
            request.headers.add(name: "X-Callout-Permission-Sets", value: "Readers")
            let response = try await http.execute(request, timeout: .seconds(30))
            let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
            let echoed = ProxyHarness.Response(status: 0, headers: [:], body: body).echoed("X-Tenant")
            return Answer(status: Int(response.status.code), tenant: echoed)
        }

        func admin(_ path: String) async throws -> (status: Int, body: String) {
            let response = try await http.execute(
                HTTPClientRequest(url: "http://127.0.0.1:\(adminPort)\(path)"), timeout: .seconds(10))
            return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
        }

        /// Polls (bounded: 20 s) until the callout's tenant is `tenant`.
        func waitForTenant(_ tenant: String) async throws -> Bool {
            for i in 0..<100 {
                if try await callout("poll/\(i)").tenant == tenant { return true }
                try await Task.sleep(for: .milliseconds(200))
            }
            return false
        }
    }

    @Test func aKubernetesStyleSymlinkSwapIsAppliedWithoutASignal() async throws {
        let binary = try #require(DemoTests.binary(), "build callout-proxy first (swift build)")
        let env = try await LocalEnvironment.start(clientIds: ["acme-reader", "acme-admin"])
        defer { Task { await env.shutdown() } }
        let key = try String(contentsOfFile: env.signingKeyFile, encoding: .utf8)
        let certificate = try String(contentsOfFile: env.signingCertificateFile, encoding: .utf8)
        var volume = try KubernetesVolume(
            at: env.directory.appendingPathComponent("mount"),
            files: Self.files(Self.config(env, tenant: "acme-1"), key: key, certificate: certificate))
        let server = try ServedProcess.start([binary.path, "serve", "--config", volume.path("proxy.conf")])
        defer { server.stop() }
        let client = Client(
            port: try await server.waitForListenPort(),
            adminPort: try await server.waitForListenPort("admin"))

        #expect(try await client.callout("first") == Answer(status: 200, tenant: "acme-1"))
        let tokens = env.identityProvider.tokenRequestCount

        // A new configuration, the same key in a new file: applied, and the cached token kept.
        try volume.update(Self.files(Self.config(env, tenant: "acme-2"), key: key, certificate: certificate))
        #expect(try await client.waitForTenant("acme-2"), "\(server.output.suffix(2000))")
        #expect(env.identityProvider.tokenRequestCount == tokens)
        // Log lines are written in batches: wait (bounded) for them.
        var logged = false
        for _ in 0..<50 where !logged {
            logged = server.output.contains("configuration files changed") && server.output.contains("file-change")
            if !logged { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(logged, "\(server.output.suffix(2000))")

        // An invalid configuration: refused, the previous one keeps serving, /readyz says why.
        try volume.update(Self.files("[proxy\nlisten = ", key: key, certificate: certificate))
        var refused = false
        for _ in 0..<100 where !refused {
            refused = server.output.contains("configuration not reloaded")
            if !refused { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(refused, "\(server.output.suffix(2000))")
        #expect(try await client.callout("after-invalid") == Answer(status: 200, tenant: "acme-2"))
        let ready = try await client.admin("/readyz")
        #expect(ready.status == 200)
        #expect(ready.body.contains("reload_refused"), "\(ready.body)")
        #expect(ready.body.contains("proxy.conf"), "\(ready.body)")
        let metrics = try await client.admin("/metrics").body
        #expect(OpsHarness.metric("callout_config_reloads_total", ["outcome": "failure"], in: metrics) == 1)

        // A rotated signing key: the cached token is dropped and the next one is asked for with
        // the new key (which this identity provider does not know, so it is refused).
        let rotated = try DevelopmentPKI.generateSigningIdentity(commonName: "rotated")
        try volume.update(
            Self.files(
                Self.config(env, tenant: "acme-3"), key: rotated.privateKeyPEM, certificate: rotated.certificatePEM))
        var reloaded = false
        var lastReady = ""
        for _ in 0..<100 where !reloaded {
            lastReady = try await client.admin("/readyz").body
            let json = try? JSONSerialization.jsonObject(with: Data(lastReady.utf8)) as? [String: Any]
            reloaded = json?["generation"] as? Int == 3
            if !reloaded { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(reloaded, "\(lastReady)")
        #expect(!(try await client.admin("/readyz").body.contains("reload_refused")))
        let afterRotation = try await client.callout("rotated")
        #expect(afterRotation.status != 200)
        #expect(env.identityProvider.tokenRequestCount > tokens)
        #expect(server.output.contains("Acme_API"))

        // Back to the known key: callouts succeed again.
        try volume.update(Self.files(Self.config(env, tenant: "acme-4"), key: key, certificate: certificate))
        #expect(try await client.waitForTenant("acme-4"), "\(server.output.suffix(2000))")
        // No key material in the output.
        #expect(!server.output.contains("PRIVATE KEY"))
    }

    @Test func withNoWatchAChangeOnDiskIsNotApplied() async throws {
        let binary = try #require(DemoTests.binary(), "build callout-proxy first (swift build)")
        let env = try await LocalEnvironment.start(clientIds: ["acme-reader", "acme-admin"])
        defer { Task { await env.shutdown() } }
        let path = env.directory.appendingPathComponent("proxy.conf").path
        try ReloadTests.config(env, tenant: "acme-1").write(toFile: path, atomically: true, encoding: .utf8)
        let server = try ServedProcess.start([binary.path, "serve", "--no-watch", "--config", path])
        defer { server.stop() }
        let client = Client(
            port: try await server.waitForListenPort(),
            adminPort: try await server.waitForListenPort("admin"))
        #expect(try await client.callout("first") == Answer(status: 200, tenant: "acme-1"))
        try ReloadTests.config(env, tenant: "acme-2").write(toFile: path, atomically: true, encoding: .utf8)
        // Several watch intervals pass without a reload; SIGHUP still reloads.
        try await Task.sleep(for: .seconds(4))
        #expect(try await client.callout("unchanged") == Answer(status: 200, tenant: "acme-1"))
        kill(server.childPID(), SIGHUP)
        #expect(try await client.waitForTenant("acme-2"))
    }
}
