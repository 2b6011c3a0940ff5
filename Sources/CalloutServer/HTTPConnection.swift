import AsyncAlgorithms
import CalloutCore
import Logging
import NIOCore
import NIOHTTP1

typealias InboundIterator = NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator
typealias Outbound = NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>

/// One client connection: reads requests in order, answers each, honours keep-alive.
struct HTTPConnection {
    let channel: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>
    let forwarder: CalloutForwarder
    let registry: ConnectionRegistry

    func run() async {
        let peer = channel.channel.remoteAddress?.ipAddress.flatMap(IPAddress.parse)
        registry.add(channel.channel)
        defer { registry.remove(channel.channel) }
        do {
            try await channel.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                while let part = try await iterator.next() {
                    guard case .head(let head) = part else { continue }
                    _ = registry.setBusy(channel.channel, true)
                    let keepAlive = try await forwarder.handle(
                        head: head, peer: peer, inbound: &iterator, outbound: outbound, closing: registry.isDraining)
                    if !registry.setBusy(channel.channel, false) || !keepAlive { break }
                }
            }
        } catch {
            forwarder.logger.trace("connection ended", metadata: ["error": "\(type(of: error))"])
        }
    }
}

extension CalloutForwarder {
    /// Reads the body according to its framing: buffered entirely when it fits the replay buffer,
    /// else the buffered prefix is returned and the rest is left for streaming.
    func readBody(
        framing: BodyFraming, settings: ProxySettings, inbound: inout InboundIterator
    ) async throws -> Result<RequestBody, Problem> {
        switch framing {
        case .empty:
            try await skipToEnd(&inbound)
            return .success(.none)
        case .length(let n) where n > Int64(settings.maxRequestBodyBytes):
            return .failure(.requestTooLarge(limit: settings.maxRequestBodyBytes))
        case .length, .chunked:
            var buffer = ByteBuffer()
            let limit = settings.retryBodyBufferBytes
            while buffer.readableBytes <= limit {
                guard let part = try await inbound.next() else { throw ChannelError.eof }
                switch part {
                case .body(let chunk):
                    var chunk = chunk
                    buffer.writeBuffer(&chunk)
                    if buffer.readableBytes > settings.maxRequestBodyBytes {
                        return .failure(.requestTooLarge(limit: settings.maxRequestBodyBytes))
                    }
                case .end:
                    return .success(buffer.readableBytes == 0 ? .none : .buffered(buffer))
                case .head:
                    throw ChannelError.inappropriateOperationForState
                }
            }
            if case .length(let n) = framing {
                return .success(.streaming(prefix: buffer, declaredLength: n))
            }
            return .success(.streaming(prefix: buffer, declaredLength: nil))
        }
    }

    func skipToEnd(_ inbound: inout InboundIterator) async throws {
        while let part = try await inbound.next() {
            if case .end = part { return }
        }
        throw ChannelError.eof
    }

    /// Moves the rest of a streamed body from the connection into `channel`, counting bytes
    /// against the body limit. Stops early (returning false) when the upstream stopped reading.
    func pumpBody(
        from inbound: inout InboundIterator, into channel: AsyncThrowingChannel<ByteBuffer, any Error>,
        alreadySent: Int,
        limit: Int, upstreamDone: @Sendable () -> Bool
    ) async throws -> Bool {
        var total = alreadySent
        while let part = try await inbound.next() {
            switch part {
            case .body(let chunk):
                total += chunk.readableBytes
                if total > limit {
                    channel.fail(BodyLimitExceeded())
                    return false
                }
                await channel.send(chunk)
                if upstreamDone() { return false }
            case .end:
                channel.finish()
                return true
            case .head:
                channel.fail(ChannelError.inappropriateOperationForState)
                return false
            }
        }
        channel.fail(ChannelError.eof)
        return false
    }
}

struct BodyLimitExceeded: Error {}
