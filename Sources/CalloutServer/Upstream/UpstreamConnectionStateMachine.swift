import CalloutCore

/// Why an upstream connection was found out of step with its exchanges and closed.
enum UpstreamDesync: String, Sendable, CaseIterable {
    /// Bytes beyond the response that was asked for (a second answer, or junk after a body).
    case bytesAfterResponse = "bytes_after_response"
    /// Bytes while no request was outstanding (the connection was idle in the pool).
    case bytesWhileIdle = "bytes_while_idle"
    /// A response on a reused connection before the request was fully sent: it may answer
    /// an earlier exchange, so it is given to nobody.
    case responseBeforeRequestSent = "response_before_request_sent"
    /// A response whose end could not be delimited independently of the decoder.
    case unframedResponse = "unframed_response"
}

/// The connection was out of step: the callout on it fails rather than read another's answer.
struct UpstreamDesyncError: Error {
    let reason: UpstreamDesync
}

/// One upstream connection's exchanges, as events in and decisions out; no I/O.
///
/// A connection carries at most one exchange at a time and is reused only if the bytes it
/// received are exactly the response it was asked for: every byte read is checked against an
/// independent ``ResponseFramer`` before the decoder sees it, and any byte while idle, after a
/// response's end, or (on a reused connection) before the request was sent, closes it.
///
/// A response that ended cleanly leaves the connection *settling* until the end of the read that
/// carried it: bytes of that same read decoded after the response's end (a second answer in
/// another TLS record, say) are seen before anyone else can be given the connection.
struct UpstreamConnectionStateMachine {
    enum State: Equatable {
        /// No exchange: any byte that arrives is unexpected.
        case idle(reused: Bool)
        case exchange(Exchange)
        /// The response ended cleanly; reusable once the read that carried it is over.
        case settling
        case closed
    }

    struct Exchange: Equatable {
        var framer: ResponseFramer
        var reusedConnection: Bool
        var requestSent = false
        var headDelivered = false
        var keepAlive = true
        /// Set when the connection must not carry another exchange after this one.
        var desync: UpstreamDesync?
    }

    private(set) var state: State = .idle(reused: false)

    var isIdle: Bool {
        if case .idle = state { return true }
        return false
    }

    var hasExchange: Bool {
        if case .exchange = state { return true }
        return false
    }

    /// A request is about to be written. False when the connection cannot carry one (closed or busy).
    mutating func beginExchange(requestIsHEAD: Bool) -> Bool {
        guard case .idle(let reused) = state else { return false }
        state = .exchange(
            Exchange(framer: ResponseFramer(requestMethodIsHEAD: requestIsHEAD), reusedConnection: reused))
        return true
    }

    /// The request's end was written.
    mutating func requestSent() {
        guard case .exchange(var exchange) = state else { return }
        exchange.requestSent = true
        state = .exchange(exchange)
    }

    enum BytesAction: Equatable {
        /// Hand the bytes to the decoder.
        case pass
        /// Close the connection now; nobody reads these bytes.
        case close(UpstreamDesync)
    }

    /// Bytes read from the connection, before they are decoded.
    mutating func bytesReceived(_ bytes: some Collection<UInt8>) -> BytesAction {
        Array(bytes).withUnsafeBytes { bytesReceived($0) }
    }

    /// Bytes read from the connection, before they are decoded.
    mutating func bytesReceived(_ bytes: UnsafeRawBufferPointer) -> BytesAction {
        switch state {
        case .idle:
            state = .closed
            return .close(.bytesWhileIdle)
        case .settling:
            state = .closed
            return .close(.bytesAfterResponse)
        case .closed:
            return .close(.bytesWhileIdle)
        case .exchange(var exchange):
            // The payload's copy is dropped first, so the framer's buffers change in place.
            state = .closed
            switch exchange.framer.consume(bytes) {
            case .ended(let extra) where extra > 0:
                exchange.desync = exchange.desync ?? .bytesAfterResponse
            case .invalid:
                exchange.desync = exchange.desync ?? .unframedResponse
            default:
                break
            }
            state = .exchange(exchange)
            return .pass
        }
    }

    enum HeadAction: Equatable {
        case deliver
        /// Fail the exchange with this reason and close the connection.
        case fail(UpstreamDesync)
        /// Not part of an exchange (already failed or ended): drop it.
        case ignore
    }

    /// A final (non-interim) response head was decoded.
    mutating func responseHead(keepAlive: Bool) -> HeadAction {
        guard case .exchange(var exchange) = state, !exchange.headDelivered else { return .ignore }
        if !exchange.requestSent {
            // Early answers are allowed (RFC 9112 §9.5), but on a reused connection this one may
            // belong to an earlier exchange: nobody gets it.
            if exchange.reusedConnection {
                state = .closed
                return .fail(.responseBeforeRequestSent)
            }
            exchange.desync = exchange.desync ?? .responseBeforeRequestSent
        }
        exchange.headDelivered = true
        exchange.keepAlive = keepAlive
        state = .exchange(exchange)
        return .deliver
    }

    /// Whether a decoded body part belongs to the current exchange's response.
    var deliversBody: Bool {
        if case .exchange(let exchange) = state { return exchange.headDelivered }
        return false
    }

    enum EndAction: Equatable {
        /// Deliver the end; the connection may carry another exchange once ``readComplete()``
        /// says the read that carried the end held nothing more.
        case deliverAndSettle
        /// Deliver the end, then close the connection (for `desync`, when it was out of step).
        case deliverAndClose(desync: UpstreamDesync?)
        case ignore
    }

    /// The response's end was decoded.
    mutating func responseEnd() -> EndAction {
        guard case .exchange(var exchange) = state, exchange.headDelivered else { return .ignore }
        if exchange.desync == nil, exchange.framer.progress != .ended(extraBytes: 0) {
            // The decoder and the framer disagree on where the response ends.
            exchange.desync = .unframedResponse
        }
        guard exchange.desync == nil, exchange.requestSent, exchange.keepAlive else {
            state = .closed
            return .deliverAndClose(desync: exchange.desync)
        }
        state = .settling
        return .deliverAndSettle
    }

    /// A read from the socket was fully processed. True when this made a settling connection
    /// idle, so it can now be reused.
    mutating func readComplete() -> Bool {
        guard case .settling = state else { return false }
        state = .idle(reused: true)
        return true
    }

    var isSettling: Bool { state == .settling }

    /// The exchange was abandoned by its callout, or the connection failed or closed. Returns
    /// whether an exchange was in progress (and so has a callout to tell).
    mutating func closed() -> Bool {
        defer { state = .closed }
        return hasExchange
    }
}
