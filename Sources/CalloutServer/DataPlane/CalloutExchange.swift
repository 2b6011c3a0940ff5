import CalloutCore
import CalloutTokens
import NIOCore
import NIOHTTP1

/// Drives one callout's ``CalloutStateMachine``: routes the request head, turns channel, token
/// and pool events into the machine's events and performs its actions. Runs on the client
/// connection's event loop; only a token that is not in the cache is awaited elsewhere.
///
/// What it holds besides the machine is what the machine must not: the routed plan, the token,
/// the pooled connection or the wait for one, the upstream request built for this attempt, the
/// access log record and the deadline.
final class CalloutExchange: UpstreamExchangeDelegate {
    private unowned let handler: CalloutHandler
    private let pool: UpstreamPool
    private let services: CalloutServices
    private let head: HTTPRequestHead
    private let started: ContinuousClock.Instant
    private var log: CalloutLogRecord
    private var logged = false
    /// The request id was made here, so it is added to the upstream request.
    private var generatedRequestId = false

    private let snapshot: RuntimeConfiguration.Snapshot
    /// Read in place from the snapshot: no per-request copy of the settings.
    private var settings: ProxySettings { _read { yield snapshot.config.proxy } }
    private var machine: CalloutStateMachine
    private var plan: CalloutPlan?
    private var token: IssuedToken?
    private var connection: UpstreamConnection?
    /// Set while waiting for a pooled connection, so a callout that ends meanwhile stops waiting.
    private var waiting: UpstreamPool.Waiter?
    /// The upstream request of the current attempt, built before a connection is taken.
    private var request: (head: HTTPRequestHead, body: ByteBuffer?)?
    /// `request_timeout_seconds` from the first token request; moved on by response bytes.
    private var deadline: NIODeadline?
    /// Set when the response head is delivered, before the silence limit reads it.
    private var lastActivity = NIODeadline.uptimeNanoseconds(0)
    private var upstreamStarted: ContinuousClock.Instant

    init(
        handler: CalloutHandler, pool: UpstreamPool, snapshot: RuntimeConfiguration.Snapshot, head: HTTPRequestHead,
        closing: Bool
    ) {
        self.handler = handler
        self.pool = pool
        self.services = handler.services
        self.snapshot = snapshot
        self.head = head
        // One clock read: the upstream time is measured again from the connection.
        started = .now
        upstreamStarted = started
        // Read in place: a copy of the settings would retain and release every string in them.
        self.machine = CalloutStateMachine(
            .init(
                method: head.method.rawValue, clientKeepAlive: head.isKeepAlive && !closing,
                maxBodyBytes: snapshot.config.proxy.maxRequestBodyBytes,
                replayBufferBytes: snapshot.config.proxy.retryBodyBufferBytes))
        self.log = CalloutLogRecord(method: head.method.rawValue, target: head.uri, peer: handler.peer)
        if let id = RequestID.fromCaller(head.headers) {
            log.requestId = id
        } else {
            log.requestId = RequestID.make()
            generatedRequestId = true
        }
    }

    /// Client reads wait while a streamed body has nowhere to go.
    var holdsClientReads: Bool {
        if machine.streamWaitsForUpstream { return true }
        return machine.streamFlows && !(connection?.isWritable ?? false)
    }

    var acceptsResponseBytes: Bool { !machine.isDelivering || handler.isWritable }

    // MARK: - Events from the client connection

    func start() {
        let incoming = Array(head.headers.map { ($0.name, $0.value) })
        var alias: String? = nil
        let routed: RoutedCallout
        let framing = BodyFraming.of(head)
        switch CalloutRouter.route(
            config: snapshot.config, identityResolver: snapshot.identity, method: head.method.rawValue, target: head.uri,
            headers: incoming, peer: handler.peer, httpVersion: (head.version.major, head.version.minor), alias: &alias)
        {
        case .success(let r): routed = r
        case .failure(let problem):
            log.alias = alias
            // A request without a body can be answered at once and the connection kept (not a
            // CONNECT: what follows its head is tunnel data, not another request).
            let bodyRead = head.method != .CONNECT && framing == .success(.empty)
            return perform(machine.refused(problem, bodyRead: bodyRead))
        }
        let named = routed.named
        log.alias = named.name
        log.principal = routed.principal.name
        log.caller = routed.identity.callerName
        guard let upstream = snapshot.upstreams[CaseInsensitiveName(named.name)] else {
            return perform(
                machine.refused(
                    .upstreamUnavailable(named.name, reason: "no upstream for this named credential"), bodyRead: false))
        }
        let bodyFraming: BodyFraming
        switch framing {
        case .success(let f): bodyFraming = f
        case .failure(let problem): return perform(machine.refused(problem, bodyRead: false))
        }
        let expectation = MessageRules.expectation(head.headers.first(name: "expect"))
        if expectation == .unsupported {
            return perform(
                machine.refused(
                    Problem(
                        status: 417, code: "expectation_failed", title: "Expectation failed",
                        detail: "only Expect: 100-continue is supported", namedCredential: named.name),
                    bodyRead: false))
        }
        let demand = TokenDemand(
            credential: routed.credential, principal: routed.principal, identity: routed.identity,
            namedCredential: named,
            cacheKey: snapshot.tokenKey(credential: routed.credential.name, principal: routed.principal.name))
        plan = CalloutPlan(
            named: named, demand: demand, head: head, incoming: incoming, targetURL: routed.targetURL,
            requestTarget: RequestTarget.of(routed.targetURL),
            maxFormulaValueLength: settings.maxFormulaValueLength,
            // Through the snapshot: a method reference would copy the resolver and its settings.
            isIdentityHeader: { [snapshot] in snapshot.identity.isIdentityHeader($0) }, upstream: upstream)
        perform(machine.routed(framing: bodyFraming, expectsContinue: expectation == .continueBeforeBody))
    }

    func clientBody(_ chunk: ByteBuffer) { perform(machine.bodyPart(chunk)) }

    func clientEnd() { perform(machine.bodyEnd()) }

    func clientReadComplete() {
        if machine.streamFlows { connection?.flush() }
    }

    func clientBecameWritable() { connection?.resumeReading() }

    func upstreamWritabilityChanged() {
        if connection?.isWritable ?? false { handler.resumeReading() }
    }

    /// The client closed the connection: the upstream exchange is abandoned.
    func clientGone() { perform(machine.clientClosed()) }

    // MARK: - Events from the token source

    /// Waits for a token off the event loop (a fetch, or joining one in flight), after dropping
    /// `failed` from the cache when given; the outcome comes back on the loop.
    private func fetchToken(_ demand: TokenDemand, invalidating failed: IssuedToken?) {
        let tokens = services.tokens
        let loop = NIOLoopBound(self, eventLoop: pool.eventLoop)
        let eventLoop = pool.eventLoop
        Task {
            if let failed { await tokens.invalidate(failed, for: demand) }
            let result: Result<IssuedToken?, any Error>
            do { result = .success(try await tokens.token(for: demand)) } catch { result = .failure(error) }
            eventLoop.execute { loop.value.tokenArrived(result) }
        }
    }

    private func tokenArrived(_ result: Result<IssuedToken?, any Error>) {
        switch result {
        case .success(let token):
            guard case .awaitingToken = machine.state else { return }
            self.token = token
            if let token { log.tokenUsed(fetched: token.fetched) }
            perform(machine.tokenReady())
        case .failure(let error):
            perform(machine.tokenFailed(error))
        }
    }

    // MARK: - Events from the upstream

    private func connected(_ result: Result<UpstreamConnection, any Error>) {
        waiting = nil
        switch result {
        case .failure(let error):
            perform(machine.connectFailed(error))
        case .success(let taken):
            guard case .connecting = machine.state, let plan else { return pool.release(taken, reusable: true) }
            guard taken.begin(self, requestIsHEAD: head.method == .HEAD, namedCredential: plan.named.name) else {
                // Closed between the pool and here.
                return perform(machine.connectionClosedBeforeUse())
            }
            connection = taken
            upstreamStarted = .now
            perform(machine.connected(reused: taken.reused))
        }
    }

    func upstreamHead(_ response: HTTPResponseHead) {
        guard case .awaitingHead = machine.state, let plan else { return }
        let status = Int(response.status.code)
        log.upstreamStatus = status
        services.observer.upstreamResponded(
            namedCredential: plan.named.name, duration: ContinuousClock.now - upstreamStarted)
        let decision = RetryDecision.decide(
            status: status, attempt: machine.attemptNumber, injectedToken: token != nil,
            bodyReplayable: machine.bodyReplayable, credential: plan.credential,
            refreshGuarded: token?.isRefreshGuarded() ?? false)
        switch decision {
        case .deliverRefreshGuarded:
            services.observer.refreshGuarded(namedCredential: plan.named.name)
        case .deliverNotReplayable:
            refreshStatusNotReplayed(status)
        case .deliver, .refreshAndReplay:
            break
        }
        let (callerHead, endsClientConnection) = CallerResponseHead.make(
            upstream: response, request: head, clientKeepAlive: machine.request.clientKeepAlive,
            requestId: log.requestId)
        switch machine.upstreamHead(
            decision: decision, upstreamKeepAlive: response.isKeepAlive, endsClientConnection: endsClientConnection)
        {
        case .deliverHead:
            log.status = status
            lastActivity = pool.eventLoop.now
            handler.write(.head(callerHead))
        case let action:
            perform(action)
        }
    }

    func upstreamBody(_ buffer: ByteBuffer) { perform(machine.upstreamBodyPart(buffer)) }

    func upstreamEnd() { perform(machine.upstreamEnd()) }

    func upstreamReadComplete() {
        if machine.isDelivering { handler.flush() }
    }

    func upstreamFailed(_ error: any Error) {
        connection = nil
        perform(machine.upstreamFailed(error, connectionLost: UpstreamFailure.isConnectionLoss(error)))
    }

    // MARK: - Time

    /// When ``deadlinePassed()`` is due: `request_timeout_seconds` from the first token request
    /// until the response head, then the next check on a silent response body. The connection's
    /// timer calls it.
    var nextDeadline: NIODeadline? {
        machine.timing == .none ? nil : deadline
    }

    func deadlinePassed() {
        if machine.timing == .silence {
            // While the body flows, the limit is on silence between reads.
            let quietUntil = lastActivity + .seconds(Int64(settings.requestTimeoutSeconds))
            if quietUntil > pool.eventLoop.now {
                deadline = quietUntil
                return
            }
        }
        perform(machine.deadlinePassed())
    }

    // MARK: - Actions

    private func perform(_ action: CalloutStateMachine.Action) {
        switch action {
        case .none, .discardResponse, .deliverHead:
            break
        case .readBody(let sendContinue):
            if sendContinue { sendContinueResponse() }
        case .obtainToken(let sendContinue):
            if sendContinue { sendContinueResponse() }
            obtainToken()
        case .refreshToken(let release):
            switch release {
            case .release(let reusable): connection.map { pool.release($0, reusable: reusable) }
            case .abandon: connection?.abandon()
            case .none: break
            }
            connection = nil
            log.retried = true
            if let plan { fetchToken(plan.demand, invalidating: token) }
        case .connect(let fresh, let body):
            connect(fresh: fresh, body: body)
        case .returnConnection:
            break  // `connected` gives it back
        case .sendRequest(let parts, let end):
            sendRequest(streamedParts: parts, end: end)
        case .forwardBodyPart(let part):
            connection?.write(.body(.byteBuffer(part)))
        case .forwardBodyEnd:
            connection?.write(.end(nil))
            connection?.flush()
        case .deliverBodyPart(let part):
            log.bytesOut += part.readableBytes
            lastActivity = pool.eventLoop.now
            handler.write(.body(.byteBuffer(part)))
        case .finish(let reuseConnection, let keepClientConnection):
            if let connection { pool.release(connection, reusable: reuseConnection) }
            connection = nil
            finishLog()
            handler.endResponse(of: self, keepAlive: keepClientConnection)
        case .fail(let failure, let keepClientConnection):
            answer(failure, keepClientConnection: keepClientConnection)
        case .abort(let cause):
            if let cause {
                services.logger.debug(
                    "upstream body failed",
                    metadata: [
                        "named_credential": "\(plan?.named.name ?? "-")",
                        "reason": "\(UpstreamFailure.describe(cause).reason)",
                    ])
            }
            releaseUpstream()
            finishLog()
            handler.abort(self)
        case .abandon:
            releaseUpstream()
            finishLog()
        }
    }

    private func sendContinueResponse() {
        handler.write(.head(HTTPResponseHead(version: head.version, status: .continue)))
        handler.flush()
    }

    private func obtainToken() {
        guard let plan else { return }
        // `request_timeout_seconds` counts from here: the token wait is part of the callout.
        if deadline == nil {
            deadline = pool.eventLoop.now + .seconds(Int64(settings.requestTimeoutSeconds))
            handler.ensureTimer()
        }
        guard plan.needsToken else { return tokenArrived(.success(nil)) }
        do {
            if let cached = try services.tokens.cachedToken(for: plan.demand) { return tokenArrived(.success(cached)) }
        } catch {
            return tokenArrived(.failure(error))
        }
        fetchToken(plan.demand, invalidating: nil)
    }

    /// Builds the upstream request (a formula failure costs no connection), then takes one.
    private func connect(fresh: Bool, body: CalloutStateMachine.Outgoing) {
        guard let plan else { return }
        do {
            switch body {
            case .buffered(let buffered):
                let rendered = try plan.renderBody(buffered, token: token)
                request = (
                    try plan.requestHead(token: token, bodyLength: Int64(rendered?.readableBytes ?? 0)), rendered
                )
            case .streamed(let declaredLength):
                request = (try plan.requestHead(token: token, bodyLength: declaredLength), nil)
            }
        } catch {
            return perform(machine.requestNotBuilt(error as? Problem ?? .badRequest("the request could not be built")))
        }
        if generatedRequestId, let id = log.requestId { request?.head.headers.add(name: RequestID.header, value: id) }
        if !fresh, let idle = pool.takeIdle(plan.upstream.endpoint) { return connected(.success(idle)) }
        let loop = NIOLoopBound(self, eventLoop: pool.eventLoop)
        waiting = pool.acquire(plan.upstream.endpoint, limits: services.pools.limits(settings), fresh: fresh) {
            result in loop.value.connected(result)
        }
    }

    private func sendRequest(streamedParts: [ByteBuffer]?, end: Bool) {
        guard let connection, let request else { return }
        connection.write(.head(request.head))
        if let streamedParts {
            for part in streamedParts { connection.write(.body(.byteBuffer(part))) }
            if end { connection.write(.end(nil)) }
            connection.flush()
            handler.resumeReading()
        } else {
            if let rendered = request.body, rendered.readableBytes > 0 {
                connection.write(.body(.byteBuffer(rendered)))
            }
            connection.write(.end(nil))
            connection.flush()
        }
    }

    private func refreshStatusNotReplayed(_ status: Int) {
        guard let plan else { return }
        log.notReplayed = true
        services.observer.refreshNotReplayed(namedCredential: plan.named.name)
        services.logger.warning(
            "refresh status on a streamed body: not replayed",
            metadata: [
                "named_credential": "\(plan.named.name)", "status": "\(status)",
                "retry_body_buffer_bytes": "\(settings.retryBodyBufferBytes)",
            ])
        if let token {
            let tokens = services.tokens
            let demand = plan.demand
            Task { await tokens.invalidate(token, for: demand) }
        }
    }

    // MARK: - Ending

    private func releaseUpstream() {
        waiting?.cancel()
        waiting = nil
        connection?.abandon()
        connection = nil
    }

    /// Answers with the failure's problem; the caller's connection closes unless kept.
    private func answer(_ failure: CalloutFailure, keepClientConnection: Bool) {
        releaseUpstream()
        let problem = failure.problem(
            .init(
                namedCredential: plan?.named.name ?? log.alias, maxRequestBodyBytes: settings.maxRequestBodyBytes,
                requestTimeoutSeconds: settings.requestTimeoutSeconds, maxHeaderBytes: settings.maxHeaderBytes,
                connectTimeoutSeconds: settings.connectTimeoutSeconds))
        if let reason = failure.upstreamReason {
            log.upstreamFailure = reason
            services.logger.debug(
                "upstream failed", metadata: ["named_credential": "\(plan?.named.name ?? "-")", "reason": "\(reason)"])
        }
        log.status = problem.status
        log.problemCode = problem.code
        finishLog()
        handler.writeProblem(
            problem, head: head, close: !keepClientConnection, requestId: log.requestId, for: self)
    }

    private func finishLog() {
        guard !logged else { return }
        logged = true
        services.observer.calloutFinished(log, duration: ContinuousClock.now - started)
    }
}
