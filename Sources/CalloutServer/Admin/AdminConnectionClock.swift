import NIOCore
import NIOHTTP1

/// An admin connection's client time limits, the data plane's: the first request head within
/// `header_read_timeout_seconds`; body parts, and the next request after an answer, within
/// `idle_timeout_seconds`; no limit while the listener is answering. Events in, the timer
/// action out; ``AdminTimeoutHandler`` performs it.
struct AdminConnectionClock {
    enum State: Equatable {
        case awaitingFirstHead
        case readingRequest
        case answering
        case awaitingNextHead
    }

    enum Action: Equatable {
        /// Close the connection if no further event comes within this long.
        case closeAfter(TimeAmount)
        case noLimit
    }

    let headerRead: TimeAmount
    let idle: TimeAmount
    private(set) var state = State.awaitingFirstHead

    init(headerRead: TimeAmount, idle: TimeAmount) {
        self.headerRead = headerRead
        self.idle = idle
    }

    mutating func connected() -> Action {
        state = .awaitingFirstHead
        return .closeAfter(headerRead)
    }

    mutating func headReceived() -> Action {
        state = .readingRequest
        return .closeAfter(idle)
    }

    mutating func bodyReceived() -> Action {
        .closeAfter(idle)
    }

    mutating func requestEnded() -> Action {
        state = .answering
        return .noLimit
    }

    mutating func responseEnded() -> Action {
        state = .awaitingNextHead
        return .closeAfter(idle)
    }
}

/// Performs ``AdminConnectionClock``'s actions: one scheduled close, moved on every event.
final class AdminTimeoutHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var clock: AdminConnectionClock
    private var scheduled: Scheduled<Void>?

    init(headerRead: TimeAmount, idle: TimeAmount) {
        clock = AdminConnectionClock(headerRead: headerRead, idle: idle)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { perform(clock.connected(), context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        perform(clock.connected(), context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        scheduled?.cancel()
        scheduled = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: perform(clock.headReceived(), context: context)
        case .body: perform(clock.bodyReceived(), context: context)
        case .end: perform(clock.requestEnded(), context: context)
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { perform(clock.responseEnded(), context: context) }
        context.write(data, promise: promise)
    }

    private func perform(_ action: AdminConnectionClock.Action, context: ChannelHandlerContext) {
        scheduled?.cancel()
        scheduled = nil
        guard case .closeAfter(let amount) = action else { return }
        let channel = context.channel
        scheduled = context.eventLoop.scheduleTask(in: amount) { channel.close(promise: nil) }
    }
}
