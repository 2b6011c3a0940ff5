import NIOCore
import NIOHTTP1
import NIOSSL

/// Collects one HTTP/1.1 request (body bounded), asks `respond` for the reply, and writes it,
/// after the reply's delay when it has one (scheduled on the event loop, never blocking it).
final class IdentityProviderHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    struct Request: Sendable {
        var method: String
        var path: String
        var contentType: String?
        var accept: String?
        var body: [UInt8]
        /// `Authorization` (client authentication `basic`).
        var authorization: String? = nil
        /// The DER of the TLS client certificate the client presented, if any.
        var clientCertificateDER: [UInt8]? = nil
    }

    private let maxBodyBytes: Int
    private let respond: @Sendable (Request) -> IdentityProviderReply?
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false

    init(maxBodyBytes: Int, respond: @escaping @Sendable (Request) -> IdentityProviderReply?) {
        self.maxBodyBytes = maxBodyBytes
        self.respond = respond
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.removeAll(keepingCapacity: true)
            tooLarge = false
        case .body(var chunk):
            guard !tooLarge else { return }
            if body.count + chunk.readableBytes > maxBodyBytes {
                tooLarge = true
                body.removeAll()
                return
            }
            body.append(contentsOf: chunk.readBytes(length: chunk.readableBytes) ?? [])
        case .end:
            guard let head else { return }
            self.head = nil
            let reply: IdentityProviderReply
            if tooLarge {
                reply = .oauthError(413, "invalid_request", "request body too large")
            } else {
                let path = String(head.uri.prefix { $0 != "?" })
                let certificate = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
                    .peerCertificate?.toDERBytes()
                let request = Request(
                    method: head.method.rawValue, path: path,
                    contentType: head.headers.first(name: "Content-Type"),
                    accept: head.headers.first(name: "Accept"), body: body,
                    authorization: head.headers.first(name: "Authorization"), clientCertificateDER: certificate)
                reply = respond(request) ?? .oauthError(503, "temporarily_unavailable", "starting")
            }
            body.removeAll(keepingCapacity: true)
            if reply.delay > 0 {
                let nanoseconds = Int64(min(reply.delay, 3_600) * 1_000_000_000)
                context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(nanoseconds)) {
                    self.write(reply, keepAlive: head.isKeepAlive && !self.tooLarge, context: context)
                }
            } else {
                write(reply, keepAlive: head.isKeepAlive && !tooLarge, context: context)
            }
        }
    }

    private func write(
        _ reply: IdentityProviderReply, keepAlive: Bool, context: ChannelHandlerContext
    ) {
        guard context.channel.isActive else { return }
        if reply.closeWithoutAnswer {
            context.close(promise: nil)
            return
        }
        var headers = HTTPHeaders(reply.headers)
        let bytes = ByteBuffer(string: reply.body)
        headers.replaceOrAdd(name: "Content-Length", value: String(bytes.readableBytes))
        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        let head = HTTPResponseHead(
            version: .http1_1, status: HTTPResponseStatus(statusCode: reply.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(bytes))), promise: nil)
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }
}
