import Crypto
import NIOCore
import NIOHTTP1

#if canImport(Darwin)
    import Darwin
#elseif canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Serves one connection of the echo upstream: hashes each request body as it streams in
/// (never holding it), then writes the planned response, large bodies chunk by chunk as the
/// connection drains, delays scheduled on the event loop.
final class EchoUpstreamHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private struct Incoming {
        var head: HTTPRequestHead
        var behavior: EchoUpstream.Behavior
        var receivedAt: Double
        var hasher = SHA256()
        var bodyBytes = 0
    }

    /// A response body being written.
    private struct Outgoing {
        var body: EchoResponsePlan.Body
        var written = 0
        var keepAlive: Bool
        var head: HTTPResponseHead? = nil
        var afterResponse: EchoUpstream.Misbehavior = .none
        var slowChunkBytes: Int?
        var chunkDelay: Double

        var remaining: Int { body.count - written }

        mutating func next(upTo limit: Int, pattern: ByteBuffer) -> ByteBuffer {
            let length = min(limit, remaining)
            defer { written += length }
            switch body {
            case .bytes(let buffer):
                return buffer.getSlice(at: buffer.readerIndex + written, length: length) ?? ByteBuffer()
            case .generated:
                if length <= pattern.readableBytes {
                    return pattern.getSlice(at: pattern.readerIndex, length: length) ?? ByteBuffer()
                }
                var chunk = ByteBuffer()
                chunk.reserveCapacity(length)
                while chunk.readableBytes < length {
                    let piece = min(length - chunk.readableBytes, pattern.readableBytes)
                    chunk.writeImmutableBuffer(pattern.getSlice(at: pattern.readerIndex, length: piece) ?? ByteBuffer())
                }
                return chunk
            }
        }
    }

    private let core: EchoUpstreamCore
    private let abort: ConnectionAbortHandler
    /// The bytes generated bodies repeat, made on first use.
    private lazy var pattern = ByteBuffer(
        bytes: (0..<core.configuration.responseChunkBytes).map { UInt8(truncatingIfNeeded: $0 % 251) })
    private var incoming: Incoming?
    private var outgoing: Outgoing?
    private var scheduled: Scheduled<Void>?
    private var aborted = false

    private let raw: RawBytesWriter?

    init(core: EchoUpstreamCore, abort: ConnectionAbortHandler, raw: RawBytesWriter? = nil) {
        self.core = core
        self.abort = abort
        self.raw = raw
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !aborted else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            if let reset = core.closingInsteadOfAnswering(context.channel) {
                let received = Incoming(head: head, behavior: .closeImmediately, receivedAt: core.wallClock())
                core.record(recorded(received, digest: Self.emptyDigest, status: 0))
                aborted = true
                if reset { abort.abort() } else { context.close(promise: nil) }
                return
            }
            let behavior = core.behaviorForNextRequest()
            let received = Incoming(head: head, behavior: behavior, receivedAt: core.wallClock())
            if behavior == .closeImmediately {
                core.record(recorded(received, digest: Self.emptyDigest, status: 0))
                aborted = true
                abort.abort()
                return
            }
            incoming = received
        case .body(let chunk):
            guard incoming != nil else { return }
            chunk.withUnsafeReadableBytes { incoming?.hasher.update(bufferPointer: $0) }
            incoming?.bodyBytes += chunk.readableBytes
        case .end:
            guard let request = incoming else { return }
            incoming = nil
            let digest = Self.hex(request.hasher.finalize())
            let parts = recorded(request, digest: digest, status: 0)
            let exchange = EchoExchange(
                method: parts.method, path: parts.path, query: parts.query, headers: parts.headers,
                bodyBytes: request.bodyBytes, bodySHA256: digest)
            let plan = core.plan(exchange, behavior: request.behavior)
            var record = parts
            record.status = plan.status
            core.record(record)
            let keepAlive = request.head.isKeepAlive
            let isHead = request.head.method == .HEAD
            if plan.headDelay > 0 {
                let nanoseconds = Int64(min(plan.headDelay, 3_600) * 1_000_000_000)
                scheduled = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(nanoseconds)) {
                    self.scheduled = nil
                    self.respond(plan, keepAlive: keepAlive, isHead: isHead, context: context)
                }
                // The HTTP pipeline holds reads while a response is due; read once below it so a
                // client that gives up (TLS close_notify, FIN) is noticed before the delay ends.
                abort.readOnce()
            } else {
                respond(plan, keepAlive: keepAlive, isHead: isHead, context: context)
            }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let outgoing, outgoing.slowChunkBytes == nil {
            pump(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stop()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        stop()
        context.close(promise: nil)
    }

    private func stop() {
        scheduled?.cancel()
        scheduled = nil
        outgoing = nil
        incoming = nil
    }

    // MARK: Writing

    private func respond(_ plan: EchoResponsePlan, keepAlive: Bool, isHead: Bool, context: ChannelHandlerContext) {
        guard context.channel.isActive, !aborted else { return }
        var headers = HTTPHeaders(plan.headers)
        headers.replaceOrAdd(name: "Content-Length", value: String(plan.body.count))
        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        let head = HTTPResponseHead(
            version: .http1_1, status: HTTPResponseStatus(statusCode: plan.status), headers: headers)
        if plan.afterResponse != .none, raw != nil, case .bytes(let body) = plan.body, !isHead {
            return misbehave(plan.afterResponse, head: head, body: body, context: context)
        }
        context.writeAndFlush(wrapOutboundOut(.head(head)), promise: nil)
        if plan.resetAfterHead {
            aborted = true
            abort.abort()
            return
        }
        var out = Outgoing(body: isHead ? .generated(0) : plan.body, keepAlive: keepAlive, chunkDelay: plan.chunkDelay)
        if let chunks = plan.slowChunks {
            out.slowChunkBytes = max(1, (out.body.count + chunks - 1) / chunks)
            outgoing = out
            scheduleSlowChunk(context: context)
            abort.readOnce()  // as for a slow head: notice a client that gives up
        } else {
            outgoing = out
            pump(context: context)
        }
    }

    /// Writes chunks while the channel is writable; resumes on `channelWritabilityChanged`.
    private func pump(context: ChannelHandlerContext) {
        while var out = outgoing, out.remaining > 0, context.channel.isWritable {
            let chunk = out.next(upTo: core.configuration.responseChunkBytes, pattern: pattern)
            outgoing = out
            // Flushed chunk by chunk so TLS encrypts it and the socket's writability reflects it.
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
        }
        if let out = outgoing, out.remaining == 0 { finish(out, context: context) }
    }

    private func scheduleSlowChunk(context: ChannelHandlerContext) {
        guard let out = outgoing else { return }
        let nanoseconds = Int64(min(out.chunkDelay, 3_600) * 1_000_000_000)
        scheduled = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(nanoseconds)) {
            self.scheduled = nil
            guard context.channel.isActive, var out = self.outgoing else { return }
            if out.remaining > 0 {
                let chunk = out.next(upTo: out.slowChunkBytes ?? 1, pattern: self.pattern)
                context.writeAndFlush(self.wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
            }
            self.outgoing = out
            if out.remaining == 0 {
                self.finish(out, context: context)
            } else {
                self.scheduleSlowChunk(context: context)
            }
        }
    }

    private func finish(_ out: Outgoing, context: ChannelHandlerContext) {
        outgoing = nil
        if out.keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }

    /// Writes the response, then does what `misbehavior` says, in the same write where it adds
    /// bytes: as a server that answers twice, or appends junk, sends them.
    private func misbehave(
        _ misbehavior: EchoUpstream.Misbehavior, head: HTTPResponseHead, body: ByteBuffer,
        context: ChannelHandlerContext
    ) {
        guard let raw else { return }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.write(wrapOutboundOut(.end(nil)), promise: nil)
        switch misbehavior {
        case .none:
            context.flush()
        case .extraResponse:
            raw.write(Self.serialize(head, body: body))
            context.flush()
        case .junkAfterBody:
            raw.write(ByteBuffer(string: "\u{1}\u{2} this is not a response\r\n"))
            context.flush()
        case .closeAfterResponse:
            context.flush()
            context.close(promise: nil)
        case .extraResponseLater(let seconds):
            context.flush()
            let extra = Self.serialize(head, body: body)
            scheduled = context.eventLoop.assumeIsolated().scheduleTask(
                in: .nanoseconds(Int64(min(seconds, 3_600) * 1_000_000_000))
            ) {
                self.scheduled = nil
                guard context.channel.isActive else { return }
                self.raw?.write(extra)
                context.flush()
            }
        }
    }

    private static func serialize(_ head: HTTPResponseHead, body: ByteBuffer) -> ByteBuffer {
        var out = ByteBuffer()
        out.writeString("HTTP/1.1 \(head.status.code) \(head.status.reasonPhrase)\r\n")
        for (name, value) in head.headers { out.writeString("\(name): \(value)\r\n") }
        out.writeString("\r\n")
        var body = body
        out.writeBuffer(&body)
        return out
    }

    // MARK: Helpers

    private func recorded(_ request: Incoming, digest: String, status: Int) -> EchoUpstream.RecordedRequest {
        let uri = request.head.uri
        let question = uri.firstIndex(of: "?")
        return EchoUpstream.RecordedRequest(
            receivedAt: request.receivedAt, method: request.head.method.rawValue,
            path: String(uri[..<(question ?? uri.endIndex)]),
            query: question.map { String(uri[uri.index(after: $0)...]) },
            headers: request.head.headers.map { (name: $0.name, value: $0.value) },
            bodyBytes: request.bodyBytes, bodySHA256: digest, status: status)
    }

    private static let emptyDigest = hex(SHA256.hash(data: [UInt8]()))

    private static func hex(_ digest: SHA256.Digest) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Sits between TLS and the HTTP codec, so that bytes can be written that are no HTTP message
/// the encoder would produce (a misbehaving upstream's extra answers and junk).
final class RawBytesWriter: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// Writes `bytes` below the HTTP codec (flushed with the next flush).
    func write(_ bytes: ByteBuffer) {
        context?.write(wrapOutboundOut(bytes), promise: nil)
    }
}

/// Sits first in the pipeline (before TLS) so `abort()` closes the socket directly, with
/// `SO_LINGER` 0 (a TCP reset), skipping TLS `close_notify`.
final class ConnectionAbortHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// Asks the socket for one read, whatever the handlers above hold back.
    func readOnce() {
        context?.read()
    }

    func abort() {
        guard let context else { return }
        if let provider = context.channel as? any SocketOptionProvider {
            _ = provider.setSoLinger(linger(l_onoff: 1, l_linger: 0))
        }
        context.close(promise: nil)
    }
}
