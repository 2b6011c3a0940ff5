import NIOCore

/// Ends a connection whose answer went out before its request was read to the end (400, 413,
/// 431, …) the way nginx does: the write side is shut down after the answer, what the client
/// still sends is read and dropped for at most `lingering_close_seconds` and
/// `lingering_close_max_bytes`, then the connection closes. Closing at once with unread bytes in
/// the socket's buffer makes the kernel reset the connection, and a client then loses the answer
/// it had not read yet.
enum LingeringClose {
    struct Limits: Sendable {
        var time: TimeAmount
        var maxBytes: Int
    }

    /// Closes `channel` once `written` completes: lingering when `limits` allow, at once otherwise.
    static func close(_ channel: any Channel, after written: EventLoopFuture<Void>, limits: Limits?) {
        written.whenComplete { _ in
            guard let limits, limits.time > .zero, limits.maxBytes > 0, channel.isActive else {
                channel.close(promise: nil)
                return
            }
            let shutdown = channel.eventLoop.makePromise(of: Void.self)
            channel.close(mode: .output, promise: shutdown)
            shutdown.futureResult.whenComplete { result in
                do {
                    try result.get()
                    try channel.pipeline.syncOperations.addHandler(
                        Drain(limits: limits), position: .first)
                } catch {
                    channel.close(promise: nil)
                }
            }
        }
    }

    /// First on the pipeline while lingering: takes every byte before the HTTP decoder, asks for
    /// more itself (the handlers behind it hold reads), and closes at the limits or the client's end.
    final class Drain: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundIn = Never

        private let limits: Limits
        private var received = 0
        private var timer: Scheduled<Void>?

        init(limits: Limits) { self.limits = limits }

        func handlerAdded(context: ChannelHandlerContext) {
            let channel = context.channel
            timer = context.eventLoop.scheduleTask(in: limits.time) { channel.close(promise: nil) }
            context.read()
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            timer?.cancel()
            timer = nil
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received += unwrapInboundIn(data).readableBytes
            if received > limits.maxBytes { context.close(promise: nil) }
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            context.read()
        }

        func channelInactive(context: ChannelHandlerContext) {
            timer?.cancel()
            timer = nil
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
