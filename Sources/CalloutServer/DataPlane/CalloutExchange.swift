import CalloutCore
import CalloutTokens
import NIOCore
import NIOHTTP1

/// One callout, from its request head to its response end: route, identity, principal, token,
/// forward, refresh-and-retry once. Runs on the client connection's event loop; only a token
/// that is not in the cache is awaited elsewhere.
///
/// A body that fits `retry_body_buffer_bytes` is buffered, so it can be sent again after a
/// token refresh; a larger one is streamed with backpressure once the upstream is connected,
/// and is not replayed.
final class CalloutExchange: UpstreamExchangeDelegate {
    private unowned let handler: CalloutHandler
    private let pool: UpstreamPool
    private let services: CalloutServices
    private let head: HTTPRequestHead
    private let keepAlive: Bool
    private let started = ContinuousClock.now
    private var log: CalloutLogRecord
    private var logged = false

    private let snapshot: RuntimeConfiguration.Snapshot
    /// Read in place from the snapshot: no per-request copy of the settings.
    private var settings: ProxySettings { _read { yield snapshot.config.proxy } }
    private var plan: CalloutPlan?
    private var demand: TokenDemand?

    private enum Body {
        /// Reading a body that may still fit the replay buffer.
        case collecting(ByteBuffer)
        /// Read completely (`nil`: no body); can be sent again.
        case buffered(ByteBuffer?)
        /// Larger than the replay buffer: parts go upstream as they come.
        case streaming(declaredLength: Int64?)
    }
    private var body: Body = .buffered(nil)
    private var clientBodyDone = false
    private var streamedBytes = 0
    /// Streamed parts that arrived before the upstream was ready.
    private var pendingParts: [ByteBuffer] = []
    private var upstreamReady = false

    private enum Stage {
        case readingBody, awaitingToken, connecting, awaitingHead, discarding, delivering, done
    }
    private var stage = Stage.readingBody
    private var token: IssuedToken?
    private var retried = false
    private var staleRetried = false
    private var connection: UpstreamConnection?
    /// The upstream request, built once per attempt before a connection is taken.
    private var request: (head: HTTPRequestHead, body: ByteBuffer?)?
    /// Set while waiting for a pooled connection, so a callout that ends meanwhile stops waiting.
    private var waiting: UpstreamPool.Waiter?
    private var connectionWasReused = false
    private var responseKeepAlive = true
    /// The caller's connection ends with this response (an HTTP/1.0 body without a length).
    private var responseClosesConnection = false
    private var discardedBytes = 0
    private var deadline: NIODeadline?
    private var lastActivity = NIODeadline.now()
    private var upstreamStarted = ContinuousClock.now

    init(
        handler: CalloutHandler, pool: UpstreamPool, snapshot: RuntimeConfiguration.Snapshot, head: HTTPRequestHead,
        closing: Bool
    ) {
        self.handler = handler
        self.pool = pool
        self.services = handler.services
        self.snapshot = snapshot
        self.head = head
        self.keepAlive = head.isKeepAlive && !closing
        self.log = CalloutLogRecord(method: head.method.rawValue, target: head.uri, peer: handler.peer)
        if let id = RequestID.fromCaller(head.headers) {
            log.requestId = id
        } else {
            log.requestId = RequestID.make()
            generatedRequestId = true
        }
    }

    /// The request id was made here, so it is added to the upstream request.
    private var generatedRequestId = false

    private var bodyReplayable: Bool {
        if case .streaming = body { return false }
        return true
    }

    /// Client reads wait while a streamed body has nowhere to go.
    var holdsClientReads: Bool {
        guard case .streaming = body, stage != .done else { return false }
        return !upstreamReady || !(connection?.isWritable ?? false)
    }

    var acceptsResponseBytes: Bool { stage != .delivering || handler.isWritable }

    // MARK: - Request

    func start() {
        let config = snapshot.config
        let incoming = Array(head.headers.map { ($0.name, $0.value) })
        var alias: String? = nil
        let routed: RoutedCallout
        switch CalloutRouter.route(
            config: config, identityResolver: snapshot.identity, method: head.method.rawValue, target: head.uri,
            headers: incoming, peer: handler.peer, httpVersion: (head.version.major, head.version.minor), alias: &alias)
        {
        case .success(let r): routed = r
        case .failure(let problem):
            log.alias = alias
            // A request without a body can be answered at once and the connection kept (not a
            // CONNECT: what follows its head is tunnel data, not another request).
            return refuse(problem, bodyRead: head.method != .CONNECT && BodyFraming.of(head) == .success(.empty))
        }
        let named = routed.named
        log.alias = named.name
        log.principal = routed.principal.name
        log.caller = routed.identity.callerName
        guard let upstream = snapshot.upstreams[named.name.lowercased()] else {
            return refuse(
                .upstreamUnavailable(named.name, reason: "no upstream for this named credential"), bodyRead: false)
        }
        let framing: BodyFraming
        switch BodyFraming.of(head) {
        case .success(let f): framing = f
        case .failure(let p): return refuse(p, bodyRead: false)
        }

        if case .length(let n) = framing, n > Int64(settings.maxRequestBodyBytes) {
            return refuse(.requestTooLarge(limit: settings.maxRequestBodyBytes), bodyRead: false)
        }
        // `Expect: 100-continue`: the proxy answers it itself, once the request is known to be
        // acceptable, so refused requests never make the client send its body.
        if let expectation = head.headers.first(name: "expect") {
            guard expectation.lowercased() == "100-continue" else {
                return refuse(
                    Problem(
                        status: 417, code: "expectation_failed", title: "Expectation failed",
                        detail: "only Expect: 100-continue is supported", namedCredential: named.name),
                    bodyRead: false)
            }
            if framing != .empty {
                handler.write(.head(HTTPResponseHead(version: head.version, status: .continue)))
                handler.flush()
            }
        }
        switch framing {
        case .empty:
            body = .buffered(nil)
        case .length, .chunked:
            body = .collecting(ByteBuffer())
        }
        demand = TokenDemand(
            credential: routed.credential, principal: routed.principal, identity: routed.identity,
            namedCredential: named)
        plan = CalloutPlan(
            named: named, credential: routed.credential, principal: routed.principal, identity: routed.identity,
            head: head, incoming: incoming, targetURL: routed.targetURL,
            requestTarget: UpstreamTarget.requestTarget(of: routed.targetURL),
            maxFormulaValueLength: settings.maxFormulaValueLength,
            isIdentityHeader: snapshot.identity.isIdentityHeader, upstream: upstream)
        if case .length(let n) = framing, n > Int64(settings.retryBodyBufferBytes) {
            // Too large to buffer: stream it from the start.
            body = .streaming(declaredLength: n)
            obtainToken()
        }
    }

    func clientBody(_ chunk: ByteBuffer) {
        guard stage != .done else { return }
        switch body {
        case .collecting:
            // Taken out of `body` first, so appending does not copy it.
            guard var buffer = takeCollected() else { return }
            var chunk = chunk
            buffer.writeBuffer(&chunk)
            if buffer.readableBytes > settings.maxRequestBodyBytes {
                return refuse(.requestTooLarge(limit: settings.maxRequestBodyBytes), bodyRead: false)
            }
            if buffer.readableBytes > settings.retryBodyBufferBytes {
                body = .streaming(declaredLength: nil)
                streamedBytes = buffer.readableBytes
                pendingParts.append(buffer)
                obtainToken()
            } else {
                body = .collecting(buffer)
            }
        case .streaming:
            streamedBytes += chunk.readableBytes
            if streamedBytes > settings.maxRequestBodyBytes { return bodyLimitExceeded() }
            if upstreamReady, let connection {
                connection.write(.body(.byteBuffer(chunk)))
            } else {
                pendingParts.append(chunk)
            }
        case .buffered:
            break
        }
    }

    private func takeCollected() -> ByteBuffer? {
        guard case .collecting(let buffer) = body else { return nil }
        body = .buffered(nil)
        return buffer
    }

    func clientEnd() {
        guard stage != .done else { return }
        clientBodyDone = true
        switch body {
        case .collecting(let buffer):
            body = .buffered(buffer.readableBytes == 0 ? nil : buffer)
            obtainToken()
        case .buffered:
            obtainToken()
        case .streaming:
            if upstreamReady, let connection {
                connection.write(.end(nil))
                connection.flush()
            }
        }
    }

    func clientReadComplete() {
        if case .streaming = body, upstreamReady { connection?.flush() }
    }

    func clientBecameWritable() {
        connection?.resumeReading()
    }

    func upstreamWritabilityChanged() {
        if connection?.isWritable ?? false { handler.resumeReading() }
    }

    /// The client closed the connection: the upstream exchange is abandoned.
    func clientGone() {
        guard stage != .done else { return }
        stage = .done
        waiting?.cancel()
        waiting = nil
        connection?.abandon()
        connection = nil
        finishLog()
    }

    // MARK: - Token

    private func obtainToken() {
        guard let plan, let demand else { return }
        stage = .awaitingToken
        // `request_timeout_seconds` counts from here: the token fetch is part of the callout.
        if deadline == nil { deadline = .now() + .seconds(Int64(settings.requestTimeoutSeconds)) }
        guard plan.needsToken else { return tokenReady(nil) }
        do {
            if let cached = try services.tokens.cachedToken(for: demand) { return tokenReady(cached) }
        } catch {
            return tokenFailed(error)
        }
        fetchToken(demand, invalidating: nil)
    }

    /// Waits for a token off the event loop (a fetch, or joining one in flight), after dropping
    /// `failed` from the cache when given; the outcome comes back on the loop.
    private func fetchToken(_ demand: TokenDemand, invalidating failed: IssuedToken?) {
        let tokens = services.tokens
        let loop = NIOLoopBound(self, eventLoop: pool.eventLoop)
        let eventLoop = pool.eventLoop
        Task {
            if let failed { await tokens.invalidate(failed, for: demand) }
            let result: Result<IssuedToken, any Error>
            do { result = .success(try await tokens.token(for: demand)) } catch { result = .failure(error) }
            eventLoop.execute {
                switch result {
                case .success(let token): loop.value.tokenReady(token)
                case .failure(let error): loop.value.tokenFailed(error)
                }
            }
        }
    }

    private func tokenFailed(_ error: any Error) {
        guard stage == .awaitingToken else { return }
        guard let problem = error as? Problem else {
            return refuse(
                Problem(
                    status: 502, code: "identity_provider_unavailable", title: "Identity provider unavailable",
                    detail: "the token request failed", namedCredential: plan?.named.name),
                bodyRead: clientBodyDone)
        }
        refuse(problem, bodyRead: clientBodyDone)
    }

    private func tokenReady(_ token: IssuedToken?) {
        guard stage == .awaitingToken else { return }
        self.token = token
        if let token { log.tokenUsed(fetched: token.fetched) }
        send(fresh: false)
    }

    // MARK: - Upstream

    private func send(fresh: Bool) {
        guard let plan else { return }
        if deadline == nil { deadline = .now() + .seconds(Int64(settings.requestTimeoutSeconds)) }
        // A token refresh that outlasted the deadline does not send the request after all.
        if let deadline, deadline <= .now() { return upstreamProblem(UpstreamTimeoutError()) }
        // The request is built before a connection is taken: a formula failure costs none.
        do {
            switch body {
            case .buffered(let buffered):
                let rendered = try plan.renderBody(buffered, token: token)
                var head = try plan.requestHead(token: token, bodyLength: Int64(rendered?.readableBytes ?? 0))
                if generatedRequestId, let id = log.requestId { head.headers.add(name: RequestID.header, value: id) }
                request = (head, rendered)
            case .streaming(let declaredLength):
                var head = try plan.requestHead(token: token, bodyLength: declaredLength)
                if generatedRequestId, let id = log.requestId { head.headers.add(name: RequestID.header, value: id) }
                request = (head, nil)
            case .collecting:
                // Only a complete body (or a streamed one) is ever sent; a body still being
                // collected here is a fault of the proxy's own, answered rather than trusted.
                throw Problem(
                    status: 500, code: "internal_error", title: "Internal error",
                    detail: "the request body was not complete when the request was built")
            }
        } catch {
            let problem = error as? Problem ?? .badRequest("the request could not be built")
            return refuse(problem, bodyRead: clientBodyDone)
        }
        stage = .connecting
        handler.ensureTimer()
        if !fresh, let idle = pool.takeIdle(plan.upstream.endpoint) { return connected(.success(idle)) }
        let loop = NIOLoopBound(self, eventLoop: pool.eventLoop)
        waiting = pool.acquire(plan.upstream.endpoint, limits: services.pools.limits(settings), fresh: fresh) {
            result in loop.value.connected(result)
        }
    }

    private func connected(_ result: Result<UpstreamConnection, any Error>) {
        waiting = nil
        guard stage == .connecting, let request, let plan else {
            if case .success(let connection) = result { pool.release(connection, reusable: true) }
            return
        }
        let connection: UpstreamConnection
        switch result {
        case .success(let c): connection = c
        case .failure(let error): return upstreamProblem(error)
        }
        connectionWasReused = connection.reused
        guard connection.begin(self, requestIsHEAD: head.method == .HEAD, namedCredential: plan.named.name) else {
            // Closed between the pool and here: another one.
            return send(fresh: true)
        }
        self.connection = connection
        stage = .awaitingHead
        upstreamStarted = .now
        connection.write(.head(request.head))
        switch body {
        case .buffered:
            if let rendered = request.body, rendered.readableBytes > 0 {
                connection.write(.body(.byteBuffer(rendered)))
            }
            connection.write(.end(nil))
            connection.flush()
        case .streaming:
            for part in pendingParts { connection.write(.body(.byteBuffer(part))) }
            pendingParts = []
            if clientBodyDone { connection.write(.end(nil)) }
            connection.flush()
            upstreamReady = true
            handler.resumeReading()
        case .collecting:
            // Never reached: `send` refuses a body still being collected.
            connection.abandon()
            self.connection = nil
            return upstreamProblem(UpstreamClosedError())
        }
    }

    func upstreamHead(_ response: HTTPResponseHead) {
        guard stage == .awaitingHead, let plan else { return }
        log.upstreamStatus = Int(response.status.code)
        services.observer.upstreamResponded(
            namedCredential: plan.named.name, duration: ContinuousClock.now - upstreamStarted)
        responseKeepAlive = response.isKeepAlive
        if !retried {
            let decision = RetryDecision.decide(
                status: Int(response.status.code), attempt: 1, injectedToken: token != nil,
                bodyReplayable: bodyReplayable, credential: plan.credential,
                refreshGuarded: token?.isRefreshGuarded() ?? false)
            switch decision {
            case .refreshAndReplay where token != nil:
                // Read the refused response to its end, then refresh and send again.
                stage = .discarding
                discardedBytes = 0
                return
            case .deliverRefreshGuarded:
                services.observer.refreshGuarded(namedCredential: plan.named.name)
            case .deliverNotReplayable:
                log.notReplayed = true
                services.observer.refreshNotReplayed(namedCredential: plan.named.name)
                services.logger.warning(
                    "refresh status on a streamed body: not replayed",
                    metadata: [
                        "named_credential": "\(plan.named.name)", "status": "\(response.status.code)",
                        "retry_body_buffer_bytes": "\(settings.retryBodyBufferBytes)",
                    ])
                if let token, let demand {
                    let tokens = services.tokens
                    Task { await tokens.invalidate(token, for: demand) }
                }
            default:
                break
            }
        }
        deliverHead(response)
    }

    private func deliverHead(_ response: HTTPResponseHead) {
        // Hop-by-hop headers go, and so do those the Connection header names (other than its
        // keep-alive / close, which are hop-by-hop anyway). Usually that is just
        // `Connection: keep-alive`, found in the one pass that looks for them.
        var headers = response.headers
        var hasHopByHop = false
        var listed: [String] = []
        for (name, value) in headers where OutboundHeaders.isHopByHop(name) {
            hasHopByHop = true
            guard name.caseInsensitiveEquals("connection") else { continue }
            for token in value.split(separator: ",") {
                let token = String(token.trimming(while: { $0 == " " || $0 == "\t" }))
                if !token.caseInsensitiveEquals("keep-alive") && !token.caseInsensitiveEquals("close") {
                    listed.append(token)
                }
            }
        }
        if hasHopByHop {
            headers = HTTPHeaders(
                headers.filter { header in
                    !OutboundHeaders.isHopByHop(header.name)
                        && !listed.contains { $0.caseInsensitiveEquals(header.name) }
                })
        }
        headers.add(name: "Via", value: CalloutPlan.via)
        // An HTTP/1.0 caller cannot take a chunked body: without a length, the end of the
        // connection ends the body.
        let bodiless = head.method == .HEAD || response.status.code == 204 || response.status.code == 304
        if head.version.major == 1 && head.version.minor == 0 && !bodiless && !headers.contains(name: "content-length")
        {
            responseClosesConnection = true
        }
        if !keepAlive || responseClosesConnection {
            headers.replaceOrAdd(name: "Connection", value: "close")
        } else if head.version.major == 1 && head.version.minor == 0 {
            // An HTTP/1.0 caller keeps the connection only when told so.
            headers.replaceOrAdd(name: "Connection", value: "keep-alive")
        }
        if let id = log.requestId { headers.replaceOrAdd(name: RequestID.header, value: id) }
        log.status = Int(response.status.code)
        var responseHead = HTTPResponseHead(version: head.version, status: response.status, headers: headers)
        if bodiless { responseHead.headers.remove(name: "transfer-encoding") }
        stage = .delivering
        lastActivity = .now()
        handler.write(.head(responseHead))
    }

    func upstreamBody(_ buffer: ByteBuffer) {
        switch stage {
        case .delivering:
            log.bytesOut += buffer.readableBytes
            lastActivity = .now()
            handler.write(.body(.byteBuffer(buffer)))
        case .discarding:
            discardedBytes += buffer.readableBytes
            if discardedBytes > 1 << 20 {
                // Not worth reading to the end: a fresh connection is cheaper.
                connection?.abandon()
                connection = nil
                refreshAndReplay()
            }
        default:
            break
        }
    }

    func upstreamEnd() {
        guard let connection else { return }
        let requestComplete = bodyReplayable || clientBodyDone
        switch stage {
        case .discarding:
            self.connection = nil
            pool.release(connection, reusable: responseKeepAlive && requestComplete)
            refreshAndReplay()
        case .delivering:
            self.connection = nil
            pool.release(connection, reusable: responseKeepAlive && requestComplete)
            stage = .done
            finishLog()
            // A streamed body the upstream did not wait for leaves the client mid-request.
            handler.endResponse(of: self, keepAlive: keepAlive && clientBodyDone && !responseClosesConnection)
        default:
            break
        }
    }

    func upstreamReadComplete() {
        if stage == .delivering { handler.flush() }
    }

    func upstreamFailed(_ error: any Error) {
        connection = nil
        switch stage {
        case .discarding:
            refreshAndReplay()
        case .awaitingHead:
            // A kept-alive connection the upstream had just closed: an idempotent request is tried
            // once more on a new one (RFC 9110 §9.2.2; the upstream may have acted on anything else).
            if connectionWasReused, bodyReplayable, !staleRetried, Self.isIdempotent(head.method),
                error is UpstreamClosedError || error is IOError
            {
                staleRetried = true
                return send(fresh: true)
            }
            upstreamProblem(error)
        case .delivering:
            // The caller already has the head: all that can be done is to end the connection.
            services.logger.debug(
                "upstream body failed",
                metadata: [
                    "named_credential": "\(plan?.named.name ?? "-")",
                    "reason": "\(UpstreamFailure.describe(error).reason)",
                ])
            stage = .done
            finishLog()
            handler.abort(self)
        default:
            break
        }
    }

    static func isIdempotent(_ method: HTTPMethod) -> Bool {
        switch method {
        case .GET, .HEAD, .PUT, .DELETE, .OPTIONS, .TRACE: return true
        default: return false
        }
    }

    private func refreshAndReplay() {
        guard let demand, let failed = token else { return }
        retried = true
        log.retried = true
        stage = .awaitingToken
        fetchToken(demand, invalidating: failed)
    }

    private func upstreamProblem(_ error: any Error) {
        guard let plan else { return }
        let (timeout, reason) = UpstreamFailure.describe(error)
        log.upstreamFailure = reason
        services.logger.debug(
            "upstream failed", metadata: ["named_credential": "\(plan.named.name)", "reason": "\(reason)"])
        refuse(
            timeout
                ? .upstreamTimeout(plan.named.name, seconds: settings.requestTimeoutSeconds)
                : .upstreamUnavailable(plan.named.name, reason: reason),
            bodyRead: clientBodyDone)
    }

    private func bodyLimitExceeded() {
        if stage == .delivering {
            stage = .done
            connection?.abandon()
            connection = nil
            finishLog()
            handler.abort(self)
        } else {
            refuse(.requestTooLarge(limit: settings.maxRequestBodyBytes), bodyRead: false)
        }
    }

    // MARK: - Time

    /// When ``deadlinePassed()`` is due: the response head's deadline while waiting for it, then
    /// the next check on a silent response body. The connection's timer calls it.
    var nextDeadline: NIODeadline? {
        switch stage {
        case .connecting, .awaitingHead, .discarding, .delivering: return deadline
        default: return nil
        }
    }

    func deadlinePassed() {
        switch stage {
        case .connecting, .awaitingHead, .discarding:
            connection?.abandon()
            connection = nil
            upstreamProblem(UpstreamTimeoutError())
        case .delivering:
            // While the body flows, the limit is on silence between reads.
            let quietUntil = lastActivity + .seconds(Int64(settings.requestTimeoutSeconds))
            if quietUntil > .now() {
                deadline = quietUntil
                return
            }
            connection?.abandon()
            upstreamFailed(UpstreamTimeoutError())
        default:
            break
        }
    }

    // MARK: - Ending

    /// Answers with a problem; a request whose body was not read closes the connection.
    private func refuse(_ problem: Problem, bodyRead: Bool) {
        guard stage != .done else { return }
        stage = .done
        waiting?.cancel()
        waiting = nil
        if let connection {
            connection.abandon()
            self.connection = nil
        }
        log.status = problem.status
        log.problemCode = problem.code
        finishLog()
        let close = !bodyRead || !keepAlive
        handler.writeProblem(problem, head: head, close: close, requestId: log.requestId, for: self)
    }

    private func finishLog() {
        guard !logged else { return }
        logged = true
        services.observer.calloutFinished(log, duration: ContinuousClock.now - started)
    }
}

/// No response head within `request_timeout_seconds`, or a response body silent that long.
struct UpstreamTimeoutError: Error {}
