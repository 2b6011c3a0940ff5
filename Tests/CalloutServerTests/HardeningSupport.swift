import CalloutDevTools
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One loopback TCP connection that writes exact bytes and collects everything the peer sends.
final class RawConnection: Sendable {
    let channel: any Channel
    private let received: NIOLockedValueBox<[UInt8]>

    private init(channel: any Channel, received: NIOLockedValueBox<[UInt8]>) {
        self.channel = channel
        self.received = received
    }

    static func open(port: Int) async throws -> RawConnection {
        let received = NIOLockedValueBox<[UInt8]>([])
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(received: received))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawConnection(channel: channel, received: received)
    }

    func write(_ text: String) async throws {
        try await write(Array(text.utf8))
    }

    func write(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()
    }

    var bytes: [UInt8] { received.withLockedValue { $0 } }
    var text: String { String(decoding: bytes, as: UTF8.self) }
    var isClosed: Bool { !channel.isActive }

    func close() { channel.close(promise: nil) }

    /// Waits until the peer closed the connection; false if it is still open after `timeout`.
    func waitForClose(timeout: Duration = .seconds(10)) async -> Bool {
        await poll(timeout: timeout) { self.isClosed }
    }

    /// Waits for at least `count` bytes (or the close); false on timeout.
    func waitForBytes(_ count: Int = 1, timeout: Duration = .seconds(10)) async -> Bool {
        await poll(timeout: timeout) { self.bytes.count >= count || self.isClosed }
    }

    /// Waits for one complete response (head, and a `Content-Length` body), or the close.
    func waitForResponse(timeout: Duration = .seconds(10)) async -> RawResponse? {
        _ = await poll(timeout: timeout) { RawResponse(self.bytes)?.isComplete == true || self.isClosed }
        return RawResponse(bytes)
    }
}

private final class Collector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let received: NIOLockedValueBox<[UInt8]>

    init(received: NIOLockedValueBox<[UInt8]>) { self.received = received }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        received.withLockedValue { $0.append(contentsOf: buffer.readableBytesView) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// An HTTP/1.1 response as raw bytes parsed loosely: status, header lines, body.
struct RawResponse {
    let status: Int
    let headers: [(String, String)]
    let body: String
    let isComplete: Bool

    init?(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let end = text.range(of: "\r\n\r\n") else { return nil }
        let lines = text[..<end.lowerBound].components(separatedBy: "\r\n")
        let statusLine = lines[0].split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
        self.status = status
        self.headers = lines.dropFirst().compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        self.body = String(text[end.upperBound...])
        if let length = headers.first(where: { $0.0.lowercased() == "content-length" }).flatMap({ Int($0.1) }) {
            isComplete = body.utf8.count >= length
        } else {
            isComplete = true
        }
    }

    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    var code: String? {
        ((try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any])?["code"] as? String
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
func poll(timeout: Duration, _ condition: @Sendable () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return await condition()
}

/// A loopback port that was free a moment ago (bound, then closed), for a server a test starts on
/// it. A test that needs a port to stay refusing uses `RefusingPort`.
func closedLoopbackPort() async throws -> Int {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress?.port ?? 9
    try await channel.close()
    return port
}

/// A listener that counts the connections it accepts and closes them: proves nobody called it.
final class CountingListener: Sendable {
    let channel: any Channel
    private let accepted: NIOLockedValueBox<Int>
    var port: Int { channel.localAddress?.port ?? 0 }
    var count: Int { accepted.withLockedValue { $0 } }

    private init(channel: any Channel, accepted: NIOLockedValueBox<Int>) {
        self.channel = channel
        self.accepted = accepted
    }

    static func start() async throws -> CountingListener {
        let accepted = NIOLockedValueBox(0)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                accepted.withLockedValue { $0 += 1 }
                return channel.close()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return CountingListener(channel: channel, accepted: accepted)
    }

    func stop() async { try? await channel.close() }
}

/// The open-file limit of this process.
func openFileLimit() -> Int {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
    return limit.rlim_cur > UInt64(Int.max) ? Int.max : Int(limit.rlim_cur)
}

extension ProxyHarness {
    /// Every secret this run produced: access tokens the upstream received, assertions the
    /// identity provider received, and the base64 lines of the generated signing key.
    func secrets() throws -> [String] {
        var found: Set<String> = []
        for request in upstream.requests {
            if let authorization = request.authorization, let token = authorization.split(separator: " ").last {
                found.insert(String(token))
            }
        }
        for request in idp.requests {
            if let assertion = request.assertion, !assertion.isEmpty {
                found.insert(assertion)
                // Signature and payload separately, in case only a part leaked.
                for part in assertion.split(separator: ".").dropFirst() where part.count >= 16 {
                    found.insert(String(part))
                }
            }
        }
        let pem = try String(contentsOfFile: env.signingKeyFile, encoding: .utf8)
        for line in pem.split(whereSeparator: \.isNewline) where !line.hasPrefix("-----") && line.count >= 16 {
            found.insert(String(line))
        }
        return found.sorted()
    }

    /// Expects no secret in the captured logs (trace level) or in any of `outputs`.
    func expectNoSecretsLeaked(in outputs: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let secrets = try secrets()
        #expect(!secrets.isEmpty, sourceLocation: sourceLocation)
        let haystacks = [logs.text] + outputs
        for secret in secrets {
            for (index, haystack) in haystacks.enumerated() {
                guard let range = haystack.range(of: secret) else { continue }
                let before = haystack[..<range.lowerBound].suffix(120)
                Issue.record(
                    "a secret (\(secret.count) characters) appeared in \(index == 0 ? "the logs" : "output \(index)") after: \(before)",
                    sourceLocation: sourceLocation)
            }
        }
    }
}
