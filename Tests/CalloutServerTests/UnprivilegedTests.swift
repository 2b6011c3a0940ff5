import CalloutDevTools
import Foundation
import NIOCore
import Testing

@testable import CalloutServer

/// The proxy as containers and dedicated service accounts run it: as a user without privileges.
/// CI runs as root, so the test drops to `nobody` with `setpriv`; run as any other user, it runs
/// the binary as that user.
@Suite(.serialized) struct UnprivilegedTests {
    @Test func servesCalloutsAsAnUnprivilegedUser() async throws {
        let binary = try #require(DemoTests.binary(), "build callout-proxy first (swift build)")
        try await ProxyHarness.with { h in
            // Configuration and keys in a folder the unprivileged user owns, as a mounted volume would be.
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("unprivileged-\(UUID())")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            for (name, source) in [
                ("ca.pem", h.env.caFile), ("signing.key", h.env.signingKeyFile),
                ("signing.crt", h.env.signingCertificateFile),
            ] {
                try FileManager.default.copyItem(atPath: source, toPath: folder.appendingPathComponent(name).path)
            }
            var text = ProxyHarness.standardConfig(h.env)
            text = text.replacingOccurrences(of: h.env.caFile, with: folder.appendingPathComponent("ca.pem").path)
            text = text.replacingOccurrences(
                of: h.env.signingKeyFile, with: folder.appendingPathComponent("signing.key").path)
            text = text.replacingOccurrences(
                of: h.env.signingCertificateFile, with: folder.appendingPathComponent("signing.crt").path)
            let configFile = folder.appendingPathComponent("proxy.conf")
            try text.write(to: configFile, atomically: true, encoding: .utf8)

            var command = [binary.path, "serve", "--config", configFile.path]
            if getuid() == 0 {
                #expect(chown(folder.path, 65534, 65534) == 0)
                for name in ["ca.pem", "signing.key", "signing.crt", "proxy.conf"] {
                    #expect(chown(folder.appendingPathComponent(name).path, 65534, 65534) == 0)
                }
                command = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"] + command
            }
            let server = try ServedProcess.start(command)
            defer { server.stop() }
            let port = try await server.waitForListenPort()

            let whoami = try await ProxyHarness.run("ps", ["-o", "uid=", "-p", "\(server.childPID())"])
            if getuid() == 0 { #expect(whoami.output.trimmingCharacters(in: .whitespacesAndNewlines) == "65534") }

            // A real client through the unprivileged proxy: an upstream connection and an injected token.
            let curl = try await ProxyHarness.run(
                "curl",
                [
                    "-sS", "--max-time", "20", "-x", "http://127.0.0.1:\(port)", "-H",
                    "X-Callout-Permission-Sets: Readers", "-H", "X-Callout-User-Department: Finance",
                    "-w", "\n%{http_code}", "http://Acme/items",
                ])
            #expect(curl.status == 0, "\(server.output)")
            let lines = curl.output.split(separator: "\n")
            #expect(lines.last == "200", "\(curl.output)\n\(server.output)")
            #expect(curl.output.contains("Bearer "), "the echo shows the injected Authorization")
        }
    }

    @Test func setsTCPNoDelayOnClientAndUpstreamConnections() async throws {
        try await ProxyHarness.with { h in
            // The harness's client keeps its connection alive, so the accepted socket is still open.
            let r = try await h.direct(
                .GET, "/callout:Acme/items",
                headers: [("X-Callout-Permission-Sets", "Readers"), ("X-Callout-User-Department", "Finance")])
            #expect(r.status == 200)

            let clientChannels = await h.service.proxy.connections.channels()
            try #require(!clientChannels.isEmpty)
            for channel in clientChannels {
                let value = try await channel.getOption(.tcpOption(.tcp_nodelay)).get()
                #expect(value != 0, "TCP_NODELAY on the accepted client connection")
            }
            let upstreamChannels = await h.service.proxy.pools.idleChannels()
            try #require(!upstreamChannels.isEmpty)
            for channel in upstreamChannels {
                let value = try await channel.getOption(.tcpOption(.tcp_nodelay)).get()
                #expect(value != 0, "TCP_NODELAY on the upstream connection")
            }
        }
    }
}
