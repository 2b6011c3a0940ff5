import AsyncHTTPClient
import CalloutCore
import CalloutDevTools
import CalloutServer
import CalloutTokens
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// A running proxy on loopback with a verifying identity provider and a TLS echo upstream.
struct ProxyHarness {
    let env: LocalEnvironment
    let service: CalloutProxyService
    let config: ProxyConfig
    /// A plain client that talks to the proxy directly.
    let direct: HTTPClient
    let logs: LogCapture

    var proxyPort: Int { service.listenAddress.port ?? 0 }
    var proxyURL: String { service.proxyURL }
    var idp: DevelopmentIdentityProvider { env.identityProvider }
    var upstream: EchoUpstream { env.upstream }

    /// The standard test configuration; `extra` is appended (more named credentials, callers).
    static func standardConfig(
        _ env: LocalEnvironment, proxySettings: String = "", credentialSettings: String = "",
        namedSettings: String = "", extra: String = ""
    ) -> String {
        // Callouts have 30 s unless a test sets its own limit: the suites run in parallel on
        // few cores, and a token fetch that waits for the CPU must not turn into a 504.
        env.baseConfiguration(
            extraProxySettings: (proxySettings.contains("request_timeout_seconds")
                ? "" : "request_timeout_seconds = 30\n")
                + proxySettings) + """
                [[external_credential]]
                name = "Acme_API"
                identity_provider_url = "\(env.identityProvider.tokenEndpointURL)"
                signing_certificate = "Local_Signing"
                scope = '{!"session:role:" + $User.Department}'
                additional_refresh_status_codes = [403]
                \(credentialSettings)

                  [[external_credential.custom_header]]
                  name = "X-Tenant"
                  value = "acme"

                  [[external_credential.custom_header]]
                  name = "X-Overridden"
                  value = "from-external"

                  [[external_credential.principal]]
                  name = "Reader"
                  sequence_number = 20
                  client_id = "acme-reader"
                  permission_sets = ["Readers", "Admins"]
                  profiles = ["Ops"]

                  [[external_credential.principal]]
                  name = "Admin"
                  sequence_number = 5
                  client_id = "acme-admin"
                  permission_sets = ["Admins"]

                [[named_credential]]
                name = "Acme"
                url = "\(env.upstream.baseURL)/v2"
                external_credential = "Acme_API"
                \(namedSettings)

                  [[named_credential.custom_header]]
                  name = "X-Overridden"
                  value = "from-named"

                [[named_credential]]
                name = "Dormant"
                url = "\(env.upstream.baseURL)/v2"
                external_credential = "Acme_API"
                enabled = false

                \(extra)
                """
    }

    static func with(
        clientIds: [String] = ["acme-reader", "acme-admin"],
        config makeConfig: (LocalEnvironment) -> String = { standardConfig($0) },
        _ body: (ProxyHarness) async throws -> Void
    ) async throws {
        let env = try await LocalEnvironment.start(clientIds: clientIds)
        let logs = LogCapture()
        do {
            let text = makeConfig(env)
            let config = try ConfigLoader.load(text: text, file: "harness.conf")
            let materials = try CredentialMaterials.load(config)
            let service = try await CalloutProxyService.start(
                config: config, materials: materials, logger: logs.logger(level: .trace))
            let direct = HTTPClient(
                eventLoopGroupProvider: .singleton,
                configuration: .init(redirectConfiguration: .disallow, decompression: .disabled))
            let harness = ProxyHarness(env: env, service: service, config: config, direct: direct, logs: logs)
            try await serving(service, client: direct) { try await body(harness) }
        } catch {
            await env.shutdown()
            throw error
        }
        await env.shutdown()
    }

    struct Response {
        let status: Int
        let headers: HTTPHeaders
        let body: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
        /// The echo upstream's view of the forwarded request.
        var echoedHeaders: [(String, String)] {
            (json["headers"] as? [[String]] ?? []).compactMap { $0.count == 2 ? ($0[0], $0[1]) : nil }
        }
        func echoed(_ name: String) -> String? { echoedHeaders.first { $0.0.lowercased() == name.lowercased() }?.1 }
    }

    /// Sends a request through `client` and collects the answer.
    func send(
        _ client: HTTPClient, _ method: HTTPMethod = .GET, _ url: String, headers: [(String, String)] = [],
        body: HTTPClientRequest.Body? = nil
    ) async throws -> Response {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (n, v) in headers { request.headers.add(name: n, value: v) }
        request.body = body
        let response = try await client.execute(request, timeout: .seconds(30))
        let buffer = try await response.body.collect(upTo: 16 << 20)
        return Response(status: Int(response.status.code), headers: response.headers, body: String(buffer: buffer))
    }

    /// Through the proxy as HTTP_PROXY clients do: absolute-form `GET http://Alias/path HTTP/1.1`.
    /// (AsyncHTTPClient tunnels through proxies with CONNECT, so this uses a plain NIO client.)
    func viaProxy(
        _ method: HTTPMethod = .GET, _ aliasURL: String, headers: [(String, String)] = [], body: ByteBuffer? = nil
    ) async throws -> Response {
        var all = HTTPHeaders(headers)
        if all.first(name: "host") == nil, let host = URL(string: aliasURL)?.host { all.add(name: "Host", value: host) }
        let r = try await RawHTTPClient.send(
            to: try SocketAddress(ipAddress: "127.0.0.1", port: proxyPort),
            head: HTTPRequestHead(version: .http1_1, method: method, uri: aliasURL, headers: all), body: body)
        return Response(status: r.status, headers: r.headers, body: r.body)
    }

    /// Straight to the proxy: `/callout:Alias/path` or a path with a Host header.
    func direct(
        _ method: HTTPMethod = .GET, _ path: String, headers: [(String, String)] = [],
        body: HTTPClientRequest.Body? = nil
    ) async throws -> Response {
        try await send(direct, method, proxyURL + path, headers: headers, body: body)
    }

    /// Runs a command and returns its standard output (loopback only; bounded by `--max-time` style
    /// flags of the tool). It waits on a thread of its own, not on one of the few threads every
    /// test's tasks share.
    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) async throws
        -> (status: Int32, output: String)
    {
        try await onOwnThread { try runBlocking(executable, arguments, environment: environment) }
    }

    private static func runBlocking(_ executable: String, _ arguments: [String], environment: [String: String])
        throws -> (status: Int32, output: String)
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// Runs `service` while `body` runs; then, whatever `body` did, shuts `client` down, drains the
/// service and closes its upstream client.
func serving(_ service: CalloutProxyService, client: HTTPClient, _ body: () async throws -> Void) async throws {
    let running = Task { try await service.run() }
    func stop() async {
        try? await client.shutdown()
        service.beginShutdown()
        _ = try? await running.value
        await service.close()
    }
    do {
        try await body()
    } catch {
        await stop()
        throw error
    }
    await stop()
}

/// Collects every log line (all levels) so tests can search them for secrets.
final class LogCapture: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [String] = []

    var lines: [String] { lock.withLock { storage } }
    var text: String { lines.joined(separator: "\n") }

    func append(_ line: String) { lock.withLock { storage.append(line) } }

    func logger(level: Logger.Level) -> Logger {
        var logger = Logger(label: "test") { label in
            LineLogHandler(label: label, level: level, write: { [self] in self.append($0) })
        }
        logger.logLevel = level
        return logger
    }
}

/// Runs blocking work (waiting for a child process) on a new thread and resumes with its result,
/// so it never holds one of the cooperative pool's threads, of which a small machine has two.
func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}
