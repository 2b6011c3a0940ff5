import NIOCore
import NIOHTTP1
import NIOPosix

/// A minimal HTTP/1.1 client that sends exactly the request head it is given — absolute-form
/// targets such as `http://Acme/items` included, as HTTP_PROXY clients do (AsyncHTTPClient
/// tunnels through proxies with CONNECT instead) — over one connection, and collects the answer.
/// For the demo and tests; bodies are small.
public enum RawHTTPClient {
    public struct Response: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: String
    }

    public struct TimedOut: Error, CustomStringConvertible {
        public var description: String { "no answer in time" }
    }

    public static func send(
        to address: SocketAddress, head: HTTPRequestHead, body: ByteBuffer? = nil, timeout: Duration = .seconds(30)
    ) async throws -> Response {
        var head = head
        if let body { head.headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes)) }
        let connection = head.headers.first(name: "connection").map { $0 + ", close" } ?? "close"
        head.headers.replaceOrAdd(name: "Connection", value: connection)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(5))
            .connect(to: address) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel)
                }
            }
        let request = head
        return try await withThrowingTaskGroup(of: Response.self) { group in
            group.addTask {
                try await channel.executeThenClose { inbound, outbound in
                    // One write: a server may answer (and close) as soon as the head is complete,
                    // before a separately written zero-byte end would go out.
                    var parts: [HTTPClientRequestPart] = [.head(request)]
                    if let body { parts.append(.body(.byteBuffer(body))) }
                    parts.append(.end(nil))
                    try await outbound.write(contentsOf: parts)
                    var response = Response(status: 0, headers: [:], body: "")
                    var collected = ByteBuffer()
                    for try await part in inbound {
                        switch part {
                        case .head(let h):
                            response.status = Int(h.status.code)
                            response.headers = h.headers
                        case .body(var b): collected.writeBuffer(&b)
                        case .end: break
                        }
                    }
                    response.body = String(buffer: collected)
                    return response
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw TimedOut()
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { throw TimedOut() }
            return first
        }
    }
}
