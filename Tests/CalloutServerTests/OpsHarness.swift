import AsyncHTTPClient
import CalloutCore
import CalloutDevTools
import CalloutServer
import CalloutTokens
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// A running proxy with its admin listener on loopback, started from a configuration file so
/// reload can read it again. Reuses ``ProxyHarness``'s configuration, log capture and clients.
struct OpsHarness {
    let env: LocalEnvironment
    let service: CalloutProxyService
    let client: HTTPClient
    let logs: LogCapture
    let configPath: String
    /// Every body the proxy or the admin listener produced itself (problems, admin answers, metrics).
    let transcript: Transcript

    var idp: DevelopmentIdentityProvider { env.identityProvider }
    var upstream: EchoUpstream { env.upstream }
    var adminURL: String { service.adminURL! }

    /// The standard harness configuration with the admin listener on a free loopback port.
    static func config(
        _ env: LocalEnvironment, proxySettings: String = "", credentialSettings: String = "",
        namedSettings: String = "", extra: String = ""
    ) -> String {
        ProxyHarness.standardConfig(
            env, proxySettings: proxySettings, credentialSettings: credentialSettings, namedSettings: namedSettings,
            extra: extra
        ).replacingOccurrences(of: "admin_listen = \"off\"", with: "admin_listen = \"127.0.0.1:0\"")
    }

    static func with(
        clientIds: [String] = ["acme-reader", "acme-admin"],
        config makeConfig: (LocalEnvironment) -> String = { config($0) },
        _ body: (OpsHarness) async throws -> Void
    ) async throws {
        let env = try await LocalEnvironment.start(clientIds: clientIds)
        let logs = LogCapture()
        let path = env.directory.appendingPathComponent("proxy.conf").path
        do {
            try makeConfig(env).write(toFile: path, atomically: true, encoding: .utf8)
            let config = try ConfigLoader.load(path: path)
            let materials = try CredentialMaterials.load(config)
            let service = try await CalloutProxyService.start(
                config: config, materials: materials, logger: logs.logger(level: .trace), source: .file(path))
            let client = HTTPClient(
                eventLoopGroupProvider: .singleton,
                configuration: .init(redirectConfiguration: .disallow, decompression: .disabled))
            let harness = OpsHarness(
                env: env, service: service, client: client, logs: logs, configPath: path, transcript: Transcript())
            try await serving(service, client: client) { try await body(harness) }
        } catch {
            await env.shutdown()
            throw error
        }
        await env.shutdown()
    }

    /// Replaces the configuration file (the next reload reads it).
    func rewrite(_ text: String) throws {
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// An admin request; the answer is added to the transcript. POST and DELETE carry
    /// `X-Callout-Admin`, as scripts must (a web form cannot send it).
    func admin(
        _ method: HTTPMethod, _ path: String, body: String? = nil, headers: [(String, String)] = []
    ) async throws -> ProxyHarness.Response {
        let marked = method == .POST || method == .DELETE ? [("X-Callout-Admin", "1")] + headers : headers
        let response = try await send(method, adminURL + path, body: body, headers: marked)
        transcript.append(response.body)
        return response
    }

    /// A callout in path form (`/callout:Alias/...`); problem bodies go to the transcript.
    func callout(_ path: String, headers: [(String, String)] = [("X-Callout-Permission-Sets", "Readers")])
        async throws -> ProxyHarness.Response
    {
        let response = try await send(.GET, service.proxyURL + path, body: nil, headers: headers)
        if response.headers.first(name: "content-type") == Problem.contentType { transcript.append(response.body) }
        return response
    }

    func send(_ method: HTTPMethod, _ url: String, body: String?, headers: [(String, String)]) async throws
        -> ProxyHarness.Response
    {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (n, v) in headers { request.headers.add(name: n, value: v) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: .seconds(30))
        let buffer = try await response.body.collect(upTo: 4 << 20)
        return ProxyHarness.Response(
            status: Int(response.status.code), headers: response.headers, body: String(buffer: buffer))
    }

    /// The value of one Prometheus series from `GET /metrics`, matching every given label.
    func metric(_ name: String, _ labels: [String: String] = [:]) async throws -> Double? {
        Self.metric(name, labels, in: try await admin(.GET, "/metrics").body)
    }

    static func metric(_ name: String, _ labels: [String: String] = [:], in text: String) -> Double? {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard line.hasPrefix(name + "{") || line.hasPrefix(name + " ") else { continue }
            let series = line[..<(line.lastIndex(of: " ") ?? line.endIndex)]
            guard labels.allSatisfy({ series.contains("\($0.key)=\"\($0.value)\"") }) else { continue }
            return line.split(separator: " ").last.flatMap { Double($0) }
        }
        return nil
    }
}

/// Collected output, searched for secrets.
final class Transcript: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [String] = []
    func append(_ text: String) { lock.withLock { storage.append(text) } }
    var text: String { lock.withLock { storage.joined(separator: "\n") } }
}
