import CalloutCore
import NIOCore
import NIOHTTP1
import NIOSSL
import NIOTLS

/// Receives one exchange's response, on the connection's event loop.
protocol UpstreamExchangeDelegate: AnyObject {
    func upstreamHead(_ head: HTTPResponseHead)
    func upstreamBody(_ buffer: ByteBuffer)
    func upstreamEnd()
    /// The end of one read from the socket: a good moment to flush what was written to the caller.
    func upstreamReadComplete()
    /// The connection failed or closed before the response ended.
    func upstreamFailed(_ error: any Error)
    func upstreamWritabilityChanged()
    /// False while the caller cannot take more response bytes: the connection stops reading.
    var acceptsResponseBytes: Bool { get }
}

/// Told when a connection is found out of step and closed: why, and the named credential of the
/// last exchange it carried.
typealias UpstreamDesyncReport = @Sendable (_ reason: UpstreamDesync, _ namedCredential: String?) -> Void

/// One keep-alive HTTP/1.1 connection to an upstream. Used on its event loop only.
final class UpstreamConnection {
    let channel: any Channel
    let endpoint: UpstreamEndpoint
    let handler: UpstreamConnectionHandler
    /// Has carried an exchange before: a failure before any response byte may be a keep-alive
    /// race (the upstream closed it while idle), worth one more try on a fresh connection.
    var reused: Bool { handler.reused }
    var idleSince = NIODeadline.now()
    /// Until when it may stay idle: the pool's idle limit, shortened by the upstream's own
    /// `Keep-Alive: timeout`.
    var idleLimit: TimeAmount

    init(channel: any Channel, endpoint: UpstreamEndpoint, handler: UpstreamConnectionHandler, idleLimit: TimeAmount) {
        self.channel = channel
        self.endpoint = endpoint
        self.handler = handler
        self.idleLimit = idleLimit
    }

    var isWritable: Bool { channel.isWritable }

    /// Whether the last exchange left it able to carry another.
    var canCarryAnotherExchange: Bool { channel.isActive && handler.machine.isIdle }

    /// Starts an exchange: response parts go to `delegate` until its end or a failure. False when
    /// the connection cannot take one (it was closed meanwhile).
    func begin(_ delegate: any UpstreamExchangeDelegate, requestIsHEAD: Bool, namedCredential: String) -> Bool {
        guard handler.machine.beginExchange(requestIsHEAD: requestIsHEAD) else { return false }
        handler.delegate = delegate
        handler.namedCredential = namedCredential
        return true
    }

    func write(_ part: HTTPClientRequestPart) {
        handler.write(part)
    }

    func flush() { handler.flush() }

    /// Resumes reading after the caller drained its buffers.
    func resumeReading() { handler.resumeReading() }

    /// Ends the exchange early: the connection is closed and not reused.
    func abandon() {
        handler.delegate = nil
        handler.onSettled = nil
        _ = handler.machine.closed()
        channel.close(promise: nil)
    }
}

/// Checks every byte read from the upstream against the connection's state machine before the
/// HTTP decoder sees it: bytes nobody asked for close the connection unread.
final class UpstreamBytesMonitor: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let connection: UpstreamConnectionHandler

    init(connection: UpstreamConnectionHandler) { self.connection = connection }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        switch buffer.withUnsafeReadableBytes({ connection.machine.bytesReceived($0) }) {
        case .pass:
            context.fireChannelRead(data)
        case .close(let reason):
            connection.report(reason)
            context.close(promise: nil)
        }
    }
}

/// Passes one exchange's response parts to its delegate, as its ``UpstreamConnectionStateMachine``
/// decides, and holds reads while the caller cannot take more (backpressure for large responses).
/// Reads stay armed while the connection is idle, so bytes sent unasked are seen at once.
final class UpstreamConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    var machine = UpstreamConnectionStateMachine()
    weak var delegate: (any UpstreamExchangeDelegate)?
    /// The named credential of the current (or last) exchange, for reports.
    var namedCredential: String?
    private(set) var reused = false
    /// The upstream's `Keep-Alive: timeout` from its last response, if it sent one.
    private(set) var keepAliveTimeout: TimeAmount?
    private let onDesync: UpstreamDesyncReport
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    /// Until the connection is ready (TLS established): who to tell, or the outcome so far.
    private var onReady: ((_ error: (any Error)?) -> Void)?
    private var readyOutcome: Result<Void, any Error>?
    private var tlsEstablished = false

    init(onDesync: @escaping UpstreamDesyncReport) { self.onDesync = onDesync }

    func report(_ reason: UpstreamDesync) { onDesync(reason, namedCredential) }

    /// Calls `body` once the connection can carry a request: at once without TLS, else when the
    /// handshake completes (or with the error that ended it).
    func whenReady(tls: Bool, _ body: @escaping (_ error: (any Error)?) -> Void) {
        if !tls || tlsEstablished { return body(nil) }
        if case .failure(let error) = readyOutcome { return body(error) }
        onReady = body
    }

    private func ready(_ error: (any Error)?) {
        if let error { readyOutcome = .failure(error) } else { tlsEstablished = true }
        let body = onReady
        onReady = nil
        body?(error)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event { ready(nil) }
        context.fireUserInboundEventTriggered(event)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func write(_ part: HTTPClientRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
        if case .end = part { machine.requestSent() }
    }

    func flush() { context?.flush() }

    func resumeReading() {
        guard pendingRead, let context else { return }
        pendingRead = false
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            // Interim responses (103 Early Hints and the like) are not passed on.
            if head.status.code >= 100 && head.status.code < 200 { return }
            switch machine.responseHead(keepAlive: head.isKeepAlive) {
            case .deliver:
                keepAliveTimeout = Self.keepAliveTimeout(head.headers)
                delegate?.upstreamHead(head)
            case .fail(let reason):
                report(reason)
                let delegate = self.delegate
                self.delegate = nil
                delegate?.upstreamFailed(UpstreamDesyncError(reason: reason))
                context.close(promise: nil)
            case .ignore:
                break
            }
        case .body(let buffer):
            if machine.deliversBody { delegate?.upstreamBody(buffer) }
        case .end:
            let delegate = self.delegate
            switch machine.responseEnd() {
            case .deliverAndSettle:
                reused = true
                self.delegate = nil
                delegate?.upstreamEnd()
            case .deliverAndClose(let desync):
                if let desync { report(desync) }
                self.delegate = nil
                delegate?.upstreamEnd()
                context.close(promise: nil)
            case .ignore:
                break
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
        if machine.readComplete(), let settled = onSettled {
            onSettled = nil
            settled()
        }
        context.fireChannelReadComplete()
    }

    /// Called once a settling connection has become idle (its response's read held nothing more).
    var onSettled: (() -> Void)?

    func read(context: ChannelHandlerContext) {
        if let delegate, machine.hasExchange, !delegate.acceptsResponseBytes {
            pendingRead = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if machine.hasExchange { delegate?.upstreamWritabilityChanged() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A peer that closes without close_notify is a close, as a plain FIN would be.
        let error: any Error =
            if let tlsError = error as? NIOSSLError, case .uncleanShutdown = tlsError { UpstreamClosedError() } else {
                error
            }
        if !tlsEstablished, onReady != nil { ready(error) }
        fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !tlsEstablished, onReady != nil || readyOutcome == nil { ready(UpstreamClosedError()) }
        fail(UpstreamClosedError())
        context.fireChannelInactive()
    }

    private func fail(_ error: any Error) {
        onSettled = nil
        let delegate = self.delegate
        self.delegate = nil
        guard machine.closed(), let delegate else { return }
        delegate.upstreamFailed(error)
    }

    /// `Keep-Alive: timeout=N` (RFC 2068 §19.7.1, still sent by many servers).
    static func keepAliveTimeout(_ headers: HTTPHeaders) -> TimeAmount? {
        for value in headers[canonicalForm: "keep-alive"] {
            for parameter in value.split(separator: ",") {
                let parameter = parameter.drop(while: { $0 == " " || $0 == "\t" })
                guard parameter.lowercased().hasPrefix("timeout=") else { continue }
                if let seconds = Int64(parameter.dropFirst("timeout=".count).prefix(while: \.isNumber)) {
                    return .seconds(seconds)
                }
            }
        }
        return nil
    }
}
