import NIOCore
import NIOHTTP1

/// One client connection as states and events: requests in order, pipelined ones queued behind
/// the callout in progress, reads held while the proxy cannot take more, the client's time limits
/// (first head, body progress, idle between requests), the protocol upgrade that ends reading,
/// the parse error answered once, and the answer that ends the connection. No channel and no
/// clock: events carry the time, and ``CalloutHandler`` performs what comes out.
struct ClientConnectionStateMachine {
    struct Limits {
        /// `header_read_timeout_seconds`: the first request head.
        var headTimeout: TimeAmount
        /// `idle_timeout_seconds`: between requests, and between body reads.
        var idleTimeout: TimeAmount
        /// `request_body_timeout_seconds` and `min_request_body_rate_bytes_per_second`.
        var body: BodyDeadline
    }

    /// A request body being read from the client.
    struct Body: Equatable {
        var started: NIODeadline
        var bytes: Int
        /// Since when the proxy holds reads (its upstream cannot take more): the body's time stops.
        var heldSince: NIODeadline?
    }

    struct Open {
        /// The body being read, if a request head came and its end has not.
        var body: Body?
        /// Requests whose response has not ended.
        var inFlight = 0
        /// A callout is running: the next head waits.
        var calloutActive = false
        /// Parts of pipelined requests that wait for the callout in progress.
        var queue: [HTTPServerRequestPart] = []
        /// A final response head went out and its end has not.
        var responseStarted = false
        /// A request asked for a protocol upgrade: NIO's decoder reads nothing after it, and the
        /// proxy does not upgrade, so it is the connection's last.
        var lastRequest = false
        /// A read was asked for and held.
        var readPending = false
    }

    enum State {
        case open(Open)
        /// An answer that ends the connection is on its way (or it was aborted): input is dropped.
        case closing
    }

    enum PartAction: Equatable {
        /// Hand it to the callout (a head starts one).
        case deliver
        /// Kept for later: a callout is in progress.
        case queue
        /// The connection is closing: dropped.
        case drop
    }

    enum ResponseEnd: Equatable {
        /// The connection carries on: queued parts go on, reads resume.
        case stay
        /// The connection ends after the response; `linger`: the client may still be sending.
        case close(linger: Bool)
    }

    enum ParseErrorAction: Equatable {
        /// Answer with a problem, then close lingering.
        case answer
        /// Just close: a response is under way, the client left, or an answer went out already.
        case close
    }

    let limits: Limits
    private(set) var state = State.open(Open())
    /// When the client must have made progress; nil: nothing is expected of it now.
    private(set) var clientDeadline: NIODeadline?

    init(limits: Limits) {
        self.limits = limits
    }

    /// The connection is up: the first head is due within `header_read_timeout_seconds`.
    mutating func activated(now: NIODeadline) {
        clientDeadline = now + limits.headTimeout
    }

    var isClosing: Bool {
        if case .closing = state { return true }
        return false
    }

    /// No callout and no request in flight.
    var isIdle: Bool {
        guard case .open(let open) = state else { return false }
        return !open.calloutActive && open.inFlight == 0
    }

    // MARK: - Input

    mutating func received(_ part: HTTPServerRequestPart, now: NIODeadline) -> PartAction {
        guard case .open(var open) = state else { return .drop }
        state = .closing  // `open` is the only copy of the queue while it changes
        defer { state = .open(open) }
        switch part {
        case .head(let head):
            if head.headers.contains(name: "upgrade") { open.lastRequest = true }
            open.inFlight += 1
            open.body = Body(started: now, bytes: 0, heldSince: nil)
            clientDeadline = limits.body.limit(now + limits.idleTimeout, bodyStarted: now, bodyBytes: 0)
        case .body(let buffer):
            if var body = open.body {
                body.bytes += buffer.readableBytes
                open.body = body
                clientDeadline = limits.body.limit(
                    now + limits.idleTimeout, bodyStarted: body.started, bodyBytes: body.bytes)
            }
        case .end:
            open.body = nil
            // While the callout runs, the client owes nothing (its response may have ended already).
            if open.inFlight > 0 { clientDeadline = nil }
        }
        if !open.queue.isEmpty || (open.calloutActive && Self.isHead(part)) {
            open.queue.append(part)
            return .queue
        }
        if Self.isHead(part) { open.calloutActive = true }
        return .deliver
    }

    /// The next queued part that may go on now, up to the next head that must wait for a response.
    mutating func nextQueued() -> HTTPServerRequestPart? {
        guard case .open(var open) = state, let first = open.queue.first else { return nil }
        if open.calloutActive, Self.isHead(first) { return nil }
        state = .closing
        open.queue.removeFirst()
        if Self.isHead(first) { open.calloutActive = true }
        state = .open(open)
        return first
    }

    // MARK: - Reads

    /// NIO asks to read. True: read now; false: held until ``resume(calloutHoldsReads:now:)``.
    mutating func readRequested(calloutHoldsReads: Bool, now: NIODeadline) -> Bool {
        guard case .open(var open) = state else { return true }
        guard Self.holds(open, calloutHoldsReads) else { return true }
        if var body = open.body, body.heldSince == nil {
            // While the proxy holds reads, the body's time does not run: the client is not slow.
            body.heldSince = now
            open.body = body
            clientDeadline = nil
        }
        open.readPending = true
        state = .open(open)
        return false
    }

    /// Whether a held read should go out now.
    mutating func resume(calloutHoldsReads: Bool, now: NIODeadline) -> Bool {
        guard case .open(var open) = state, open.readPending, !Self.holds(open, calloutHoldsReads) else {
            return false
        }
        open.readPending = false
        if var body = open.body, let held = body.heldSince {
            body.heldSince = nil
            body.started = body.started + (now - held)
            open.body = body
            clientDeadline = limits.body.limit(
                now + limits.idleTimeout, bodyStarted: body.started, bodyBytes: body.bytes)
        }
        state = .open(open)
        return true
    }

    private static func holds(_ open: Open, _ calloutHoldsReads: Bool) -> Bool {
        !open.queue.isEmpty || calloutHoldsReads || (open.lastRequest && open.body == nil)
    }

    // MARK: - Output

    mutating func responseHeadWritten() {
        guard case .open(var open) = state else { return }
        open.responseStarted = true
        state = .open(open)
    }

    /// The callout's response ends. `keepAlive`: the callout allows another request; `draining`:
    /// the server is shutting down.
    mutating func responseEnded(keepAlive: Bool, draining: Bool, now: NIODeadline) -> ResponseEnd {
        guard case .open(var open) = state else { return .close(linger: false) }
        open.calloutActive = false
        open.responseStarted = false
        open.inFlight -= 1
        if open.inFlight == 0 { clientDeadline = now + limits.idleTimeout }
        guard keepAlive, !draining else {
            // A request not read to its end, or more pipelined behind it: the client may still be sending.
            let unread = open.body != nil || !open.queue.isEmpty
            state = .closing
            // The close waits for the write; a client that stops reading is cut off at the idle limit.
            clientDeadline = now + limits.idleTimeout
            return .close(linger: unread)
        }
        state = .open(open)
        return .stay
    }

    /// The callout's response was cut off after its head: the connection ends.
    mutating func aborted() {
        state = .closing
    }

    /// NIO's decoder refused the client's bytes.
    mutating func parseError(_ error: HTTPParserError, channelActive: Bool, now: NIODeadline) -> ParseErrorAction {
        // A client closing mid-request (invalidEOFState) gets no answer: nobody is listening.
        guard case .open(let open) = state, error != .invalidEOFState, !open.responseStarted, channelActive else {
            return .close
        }
        state = .closing
        clientDeadline = now + limits.idleTimeout
        return .answer
    }

    // MARK: - Time and drain

    /// The timer fired: true when the client missed its deadline and the connection closes.
    mutating func clientDeadlinePassed(now: NIODeadline) -> Bool {
        guard let deadline = clientDeadline, deadline <= now else { return false }
        clientDeadline = nil
        return true
    }

    /// The connection is gone: nothing is timed any more.
    mutating func closed() {
        clientDeadline = nil
        state = .closing
    }

    private static func isHead(_ part: HTTPServerRequestPart) -> Bool {
        if case .head = part { return true }
        return false
    }
}
