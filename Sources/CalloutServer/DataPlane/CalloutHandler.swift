import CalloutCore
import CalloutTokens
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// What every client connection of one listener shares.
final class CalloutServices: Sendable {
    let configuration: RuntimeConfiguration
    let tokens: any TokenSource
    let logger: Logger
    let observer: any CalloutObserver
    let connections: ConnectionTracker
    let pools: UpstreamPools

    init(
        configuration: RuntimeConfiguration, tokens: any TokenSource, logger: Logger, observer: any CalloutObserver,
        connections: ConnectionTracker, pools: UpstreamPools
    ) {
        self.configuration = configuration
        self.tokens = tokens
        self.logger = logger
        self.observer = observer
        self.connections = connections
        self.pools = pools
    }
}

/// Serves one client connection: requests in order, each handed to a ``CalloutExchange``.
/// Everything runs on the connection's event loop, upstream connections included.
///
/// Pipelined requests (a head arriving while a callout is in progress) wait in a queue, and the
/// connection stops reading until that callout's response has ended. Reads are held only then,
/// not around every request, so a keep-alive connection costs no extra system calls per request.
///
/// Client time limits: a connection that takes `header_read_timeout_seconds` to send its first
/// request head (slowloris), stalls for `idle_timeout_seconds` while sending a body, sends a body
/// slower than ``BodyDeadline`` allows, or sits idle that long between keep-alive requests is
/// closed. These limits and the callout's own deadline
/// share one timer per connection, moved only when a limit comes nearer than it, so the requests
/// of a busy connection schedule no timers.
///
/// HTTP parse errors (smuggling shapes, oversize heads, bad bytes) are answered with a problem
/// and the connection is closed. A parse error can come after a request head already started a
/// callout (a bad chunk size): the callout is dropped and the problem is its only response; if
/// the callout's response has already begun, the connection is just closed.
final class CalloutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let services: CalloutServices
    private(set) var context: ChannelHandlerContext?
    private(set) var pool: UpstreamPool?
    private(set) var peer: [UInt8]?
    private var machine: ClientConnectionStateMachine
    private var exchange: CalloutExchange?
    /// Re-entrancy guard: handing a queued part on can end a response, which hands on the next.
    private var drainingQueue = false
    private var timer: Scheduled<Void>?
    private var timerAt: NIODeadline?
    private let maxHeaderBytes: Int

    init(
        services: CalloutServices, headTimeout: TimeAmount, idleTimeout: TimeAmount,
        bodyDeadline: BodyDeadline = .off, maxHeaderBytes: Int
    ) {
        self.services = services
        self.machine = ClientConnectionStateMachine(
            limits: .init(headTimeout: headTimeout, idleTimeout: idleTimeout, body: bodyDeadline))
        self.maxHeaderBytes = maxHeaderBytes
    }

    /// The event loop's time (an embedded loop's in tests).
    private var now: NIODeadline { context?.eventLoop.now ?? .now() }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        pool = services.pools.pool(for: context.eventLoop)
        peer = context.channel.remoteAddress?.addressBytes
        services.connections.add(self, on: context.eventLoop)
        if context.channel.isActive { activated() }
    }

    func channelActive(context: ChannelHandlerContext) {
        activated()
        context.fireChannelActive()
    }

    private func activated() {
        machine.activated(now: now)
        ensureTimer()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        clientGone()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientGone()
        context.fireChannelInactive()
    }

    private func clientGone() {
        timer?.cancel()
        timer = nil
        machine.closed()
        if let context { services.connections.remove(self, on: context.eventLoop) }
        let current = exchange
        exchange = nil
        current?.clientGone()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch machine.received(part, now: now) {
        case .drop, .queue:
            break
        case .deliver:
            deliver(part)
        }
        ensureTimer()
    }

    private func deliver(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head):
            guard let pool, let context else { return }
            if head.method == .CONNECT { ConnectResponseFraming.unpairEncoder(context.pipeline.syncOperations) }
            let next = CalloutExchange(
                handler: self, pool: pool, snapshot: services.configuration.current, head: head,
                closing: services.connections.isDraining || head.headers.contains(name: "upgrade"))
            exchange = next
            next.start()
        case .body(let buffer):
            // Parts of a request already answered (refused at its head) are dropped.
            exchange?.clientBody(buffer)
        case .end:
            exchange?.clientEnd()
        }
    }

    /// Hands queued pipelined parts on, up to the next head that must wait for a response.
    private func drainQueue() {
        guard !drainingQueue else { return }
        drainingQueue = true
        defer { drainingQueue = false }
        while let part = machine.nextQueued() { deliver(part) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        exchange?.clientReadComplete()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if machine.readRequested(calloutHoldsReads: exchange?.holdsClientReads ?? false, now: now) {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { exchange?.clientBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parseError = error as? HTTPParserError,
            machine.parseError(parseError, channelActive: context.channel.isActive, now: now) == .answer
        else {
            context.close(promise: nil)
            return
        }
        let current = exchange
        exchange = nil
        current?.clientGone()
        let settings = services.configuration.current.config.proxy
        let problem = CalloutFailure.malformed(parseError).problem(
            .init(
                namedCredential: nil, maxRequestBodyBytes: settings.maxRequestBodyBytes,
                requestTimeoutSeconds: settings.requestTimeoutSeconds, maxHeaderBytes: maxHeaderBytes))
        writeHeadAndBody(ProblemResponse.parts(problem, head: nil, close: true))
        ensureTimer()
        // The rest of what the client sent is unread: lingering, so it reads the answer.
        LingeringClose.close(
            context.channel, after: context.writeAndFlush(wrapOutboundOut(.end(nil))), limits: lingering)
    }

    // MARK: - Time limits

    /// Makes sure the timer fires no later than the nearest limit. A timer already set for
    /// earlier stays: when it fires it finds nothing due and is set again.
    func ensureTimer() {
        guard let context else { return }
        var next = machine.clientDeadline
        if let callout = exchange?.nextDeadline, next.map({ callout < $0 }) ?? true { next = callout }
        guard let next else { return }
        if let timerAt, timerAt <= next { return }
        timer?.cancel()
        timerAt = next
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: next) { loopBound.value.timerFired() }
    }

    private func timerFired() {
        timer = nil
        timerAt = nil
        guard let context else { return }
        if machine.clientDeadlinePassed(now: now) {
            context.close(promise: nil)
            return
        }
        if let current = exchange, let due = current.nextDeadline, due <= now { current.deadlinePassed() }
        ensureTimer()
    }

    // MARK: - Draining

    /// The connection's channel while it is open.
    var channel: (any Channel)? { context?.channel }

    /// Shutdown began: an idle connection closes now; a busy one when its response ends.
    func drainRequested() {
        guard let context, exchange == nil, machine.isIdle else { return }
        context.close(promise: nil)
    }

    /// The grace period is over.
    func closeNow() {
        context?.close(promise: nil)
    }

    // MARK: - Used by the exchange

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func resumeReading() {
        guard let context, machine.resume(calloutHoldsReads: exchange?.holdsClientReads ?? false, now: now)
        else { return }
        ensureTimer()
        context.read()
    }

    func write(_ part: HTTPServerResponsePart) {
        if case .head(let head) = part, head.status.code >= 200 { machine.responseHeadWritten() }
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() { context?.flush() }

    /// Writes the response's end. The exchange is over before the write, so a pipelined request
    /// that the write releases starts a new one. `keepAlive` false closes the connection.
    func endResponse(of finished: CalloutExchange, keepAlive: Bool) {
        guard let context, exchange === finished else { return }
        exchange = nil
        let end = machine.responseEnded(
            keepAlive: keepAlive, draining: services.connections.isDraining, now: now)
        ensureTimer()
        switch end {
        case .stay:
            // No promise: a kept connection waits for nothing, and a future per response costs.
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            guard context.channel.isActive else { return }
            drainQueue()
            resumeReading()
        case .close(let linger):
            let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            LingeringClose.close(context.channel, after: written, limits: linger ? lingering : nil)
        }
    }

    /// Ends the connection without a response end (the response head was already sent).
    func abort(_ finished: CalloutExchange) {
        guard let context, exchange === finished else { return }
        exchange = nil
        machine.aborted()
        context.flush()
        context.close(promise: nil)
    }

    /// `lingering_close_seconds` and `lingering_close_max_bytes` as configured now.
    private var lingering: LingeringClose.Limits {
        let settings = services.configuration.current.config.proxy
        return .init(time: .seconds(Int64(settings.lingeringCloseSeconds)), maxBytes: settings.lingeringCloseMaxBytes)
    }

    private func writeHeadAndBody(_ parts: (HTTPResponseHead, ByteBuffer?)) {
        write(.head(parts.0))
        if let body = parts.1 { write(.body(.byteBuffer(body))) }
    }

    /// Writes a complete problem response for `finished`.
    func writeProblem(
        _ problem: Problem, head: HTTPRequestHead, close: Bool, requestId: String?, for finished: CalloutExchange
    ) {
        guard exchange === finished else { return }
        writeHeadAndBody(ProblemResponse.parts(problem, head: head, close: close, requestId: requestId))
        endResponse(of: finished, keepAlive: !close)
    }
}

/// How long a request body may take: `request_body_timeout_seconds` from its head, plus a second
/// for every `min_request_body_rate_bytes_per_second` bytes received, so a body trickled a byte at
/// a time cannot hold a connection however often its bytes come.
struct BodyDeadline: Sendable {
    var timeout: TimeAmount
    var minBytesPerSecond: Int

    static let off = BodyDeadline(timeout: .zero, minBytesPerSecond: 0)

    /// The sooner of `idleLimit` and the body's own deadline.
    func limit(_ idleLimit: NIODeadline, bodyStarted: NIODeadline, bodyBytes: Int) -> NIODeadline {
        guard minBytesPerSecond > 0 else { return idleLimit }
        let earned = TimeAmount.nanoseconds(Int64(bodyBytes / minBytesPerSecond) * 1_000_000_000)
        return min(idleLimit, bodyStarted + timeout + earned)
    }
}
