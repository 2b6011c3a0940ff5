import AsyncAlgorithms
import AsyncHTTPClient
import CalloutCore
import CalloutTokens
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOSSL

/// Handles one callout: route, identity, principal, token, forward, refresh-and-retry once.
struct CalloutForwarder: Sendable {
    let configuration: RuntimeConfiguration
    let tokens: any TokenSource
    let httpClient: HTTPClient
    let logger: Logger
    let observer: any CalloutObserver

    static let via = "1.1 callout-proxy"

    /// Returns whether the connection may serve another request.
    func handle(
        head: HTTPRequestHead, peer: [UInt8]?, inbound: inout InboundIterator, outbound: Outbound,
        closing: Bool = false
    ) async throws -> Bool {
        let started = ContinuousClock.now
        let snapshot = configuration.current
        let config = snapshot.config
        let settings = config.proxy
        var log = CalloutLogRecord(method: head.method.rawValue)
        defer { observer.calloutFinished(log, duration: ContinuousClock.now - started) }
        let keepAlive = head.isKeepAlive && !closing

        // Answers with a problem; a request whose body was not read closes the connection.
        func refuse(_ problem: Problem, bodyRead: Bool) async throws -> Bool {
            log.status = problem.status
            log.problemCode = problem.code
            let close = !bodyRead || !keepAlive
            try await ResponseWriter.writeProblem(problem, to: outbound, head: head, close: close)
            return !close
        }

        let incoming = Array(head.headers.map { ($0.name, $0.value) })
        var alias: String? = nil
        let routed: RoutedCallout
        switch CalloutRouter.route(
            config: config, identityResolver: snapshot.identity, method: head.method.rawValue, target: head.uri,
            headers: incoming, peer: peer, alias: &alias)
        {
        case .success(let r): routed = r
        case .failure(let problem):
            log.alias = alias
            return try await refuse(problem, bodyRead: false)
        }
        let named = routed.named
        log.alias = named.name
        log.principal = routed.principal.name
        let framing: BodyFraming
        switch BodyFraming.of(head) {
        case .success(let f): framing = f
        case .failure(let p): return try await refuse(p, bodyRead: false)
        }

        // `Expect: 100-continue`: the proxy answers it itself, once the request is known to be
        // acceptable, so refused requests never make the client send its body.
        if let expectation = head.headers.first(name: "expect") {
            guard expectation.lowercased() == "100-continue" else {
                return try await refuse(
                    Problem(
                        status: 417, code: "expectation_failed", title: "Expectation failed",
                        detail: "only Expect: 100-continue is supported", namedCredential: named.name),
                    bodyRead: false)
            }
            if framing != .empty {
                try await outbound.write(.head(HTTPResponseHead(version: head.version, status: .continue)))
            }
        }

        // Body: buffered when it fits the replay buffer, else streamed.
        let body: RequestBody
        switch try await readBody(framing: framing, settings: settings, inbound: &inbound) {
        case .success(let b): body = b
        case .failure(let p): return try await refuse(p, bodyRead: false)
        }
        let demand = TokenDemand(
            credential: routed.credential, principal: routed.principal, identity: routed.identity,
            namedCredential: named)
        let plan = CalloutPlan(
            named: named, credential: routed.credential, principal: routed.principal, identity: routed.identity,
            head: head, incoming: incoming, targetURL: routed.targetURL, settings: settings,
            isIdentityHeader: snapshot.identity.isIdentityHeader,
            tlsConfiguration: snapshot.upstreamTLS[named.name.lowercased()])

        let deadline = NIODeadline.now() + .seconds(Int64(settings.requestTimeoutSeconds))
        do {
            switch body {
            case .none, .buffered:
                var buffered: ByteBuffer? = nil
                if case .buffered(let b) = body { buffered = b }
                return try await forwardReplayable(
                    plan: plan, demand: demand, body: buffered, deadline: deadline, outbound: outbound, log: &log)
                    && keepAlive
            case .streaming(let prefix, let length):
                return try await forwardStreaming(
                    plan: plan, demand: demand, prefix: prefix, length: length, deadline: deadline, inbound: &inbound,
                    outbound: outbound, log: &log) && keepAlive
            }
        } catch let problem as Problem {
            // Body fully read in the replayable case; streaming failures close the connection.
            return try await refuse(problem, bodyRead: body.isReplayable)
        }
    }

    // MARK: - Replayable (buffered or empty body)

    private func forwardReplayable(
        plan: CalloutPlan, demand: TokenDemand, body: ByteBuffer?, deadline: NIODeadline, outbound: Outbound,
        log: inout CalloutLogRecord
    ) async throws -> Bool {
        var token = try await obtainToken(plan: plan, demand: demand, log: &log)
        var request = try plan.request(token: token, body: try plan.renderBody(body, token: token).map { .bytes($0) })
        var response = try await send(request, plan: plan, deadline: deadline, log: &log)
        if RetryDecision.decide(
            status: Int(response.status.code), attempt: 1, injectedToken: token != nil, bodyReplayable: true,
            credential: plan.credential) == .refreshAndReplay,
            let failed = token
        {
            log.retried = true
            await drain(response)
            await tokens.invalidate(failed, for: demand)
            token = try await obtainToken(plan: plan, demand: demand, log: &log)
            request = try plan.request(token: token, body: try plan.renderBody(body, token: token).map { .bytes($0) })
            response = try await send(request, plan: plan, deadline: deadline, log: &log)
        }
        return try await deliver(response, plan: plan, outbound: outbound, log: &log)
    }

    // MARK: - Streaming (larger than the replay buffer)

    private func forwardStreaming(
        plan: CalloutPlan, demand: TokenDemand, prefix: ByteBuffer, length: Int64?, deadline: NIODeadline,
        inbound: inout InboundIterator, outbound: Outbound, log: inout CalloutLogRecord
    ) async throws -> Bool {
        let token = try await obtainToken(plan: plan, demand: demand, log: &log)
        let channel = AsyncThrowingChannel<ByteBuffer, any Error>()
        let bodySequence = chain([prefix].async, channel)
        let request = try plan.request(
            token: token, body: .stream(bodySequence, length: length.map { .known($0) } ?? .unknown))
        let upstreamDone = NIOLockedValueBox(false)
        let limit = plan.settings.maxRequestBodyBytes
        let recordBox = NIOLockedValueBox(log)

        let (bodyComplete, keepAlive) = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                var record = recordBox.withLockedValue { $0 }
                defer {
                    upstreamDone.withLockedValue { $0 = true }
                    channel.finish()
                    recordBox.withLockedValue { $0 = record }
                }
                let response = try await send(request, plan: plan, deadline: deadline, log: &record)
                if RetryDecision.decide(
                    status: Int(response.status.code), attempt: 1, injectedToken: token != nil, bodyReplayable: false,
                    credential: plan.credential) == .deliverNotReplayable
                {
                    record.notReplayed = true
                    observer.refreshNotReplayed(namedCredential: plan.named.name)
                    logger.warning(
                        "refresh status on a streamed body: not replayed",
                        metadata: [
                            "named_credential": "\(plan.named.name)", "status": "\(response.status.code)",
                            "retry_body_buffer_bytes": "\(plan.settings.retryBodyBufferBytes)",
                        ])
                    if let token { await tokens.invalidate(token, for: demand) }
                }
                return try await deliver(response, plan: plan, outbound: outbound, log: &record)
            }
            let complete = try await pumpBody(
                from: &inbound, into: channel, alreadySent: prefix.readableBytes, limit: limit,
                upstreamDone: { upstreamDone.withLockedValue { $0 } })
            var keep = true
            do {
                while let result = try await group.next() { keep = keep && result }
            } catch {
                group.cancelAll()
                throw error
            }
            return (complete, keep)
        }
        log = recordBox.withLockedValue { $0 }
        return bodyComplete && keepAlive
    }

    // MARK: - Steps

    private func obtainToken(plan: CalloutPlan, demand: TokenDemand, log: inout CalloutLogRecord) async throws
        -> IssuedToken?
    {
        guard plan.needsToken else { return nil }
        let token = try await tokens.token(for: demand)
        log.tokenFetched = log.tokenFetched || token.fetched
        return token
    }

    private func send(
        _ request: HTTPClientRequest, plan: CalloutPlan, deadline: NIODeadline, log: inout CalloutLogRecord
    ) async throws -> HTTPClientResponse {
        let started = ContinuousClock.now
        do {
            let response = try await httpClient.execute(request, deadline: deadline, logger: logger)
            log.upstreamStatus = Int(response.status.code)
            observer.upstreamResponded(namedCredential: plan.named.name, duration: ContinuousClock.now - started)
            return response
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            let (timeout, reason) = UpstreamClient.describe(error)
            logger.debug(
                "upstream failed", metadata: ["named_credential": "\(plan.named.name)", "reason": "\(reason)"])
            throw timeout
                ? Problem.upstreamTimeout(plan.named.name, seconds: plan.settings.requestTimeoutSeconds)
                : Problem.upstreamUnavailable(plan.named.name, reason: reason)
        }
    }

    /// Reads and discards a response that will not be delivered (bounded; larger bodies are cancelled).
    private func drain(_ response: HTTPClientResponse) async {
        var seen = 0
        do {
            for try await chunk in response.body {
                seen += chunk.readableBytes
                if seen > 1 << 20 { break }
            }
        } catch {}
    }

    private func deliver(
        _ response: HTTPClientResponse, plan: CalloutPlan, outbound: Outbound, log: inout CalloutLogRecord
    ) async throws -> Bool {
        var headers = HTTPHeaders()
        var connectionTokens: Set<String> = []
        for value in response.headers[canonicalForm: "connection"] { connectionTokens.insert(value.lowercased()) }
        for (name, value) in response.headers
        where !OutboundHeaders.isHopByHopResponseHeader(name, connectionTokens: connectionTokens) {
            headers.add(name: name, value: value)
        }
        headers.add(name: "Via", value: Self.via)
        let close = !plan.head.isKeepAlive
        if close { headers.replaceOrAdd(name: "Connection", value: "close") }
        let status = response.status
        log.status = Int(status.code)
        var responseHead = HTTPResponseHead(version: plan.head.version, status: status, headers: headers)
        if plan.head.method == .HEAD || status.code == 204 || status.code == 304 {
            responseHead.headers.remove(name: "transfer-encoding")
        }
        try await outbound.write(.head(responseHead))
        var bytes = 0
        do {
            for try await chunk in response.body {
                bytes += chunk.readableBytes
                try await outbound.write(.body(.byteBuffer(chunk)))
            }
        } catch let error as NIOCore.ChannelError {
            throw error
        } catch {
            // The upstream failed mid-body: the caller already has the head, so end the connection.
            log.bytesOut = bytes
            logger.debug(
                "upstream body failed",
                metadata: [
                    "named_credential": "\(plan.named.name)", "reason": "\(UpstreamClient.describe(error).reason)",
                ])
            throw error
        }
        log.bytesOut = bytes
        try await outbound.write(.end(nil))
        return !close
    }
}

/// Everything needed to build the upstream request, fixed once per callout.
struct CalloutPlan: Sendable {
    let named: NamedCredentialConfig
    let credential: ExternalCredentialConfig
    let principal: PrincipalConfig
    let identity: CallerIdentity
    let head: HTTPRequestHead
    let incoming: [(String, String)]
    let targetURL: String
    let settings: ProxySettings
    let isIdentityHeader: @Sendable (String) -> Bool
    /// Set when the named credential presents a client certificate.
    let tlsConfiguration: TLSConfiguration?

    /// A token is needed to inject it, or when a formula in a header may read it.
    var needsToken: Bool {
        named.generateAuthorizationHeader || named.allowFormulasInHeaders || named.allowFormulasInBody
            || named.customHeaders.contains { $0.value.referencesSecrets }
    }

    func formulaContext(token: IssuedToken?, allowSecrets: Bool) -> FormulaContext {
        let parameters = credential.formulaParameters(
            principal: principal, accessToken: token?.accessToken, tokenType: token?.tokenType ?? "Bearer")
        return FormulaContext(
            user: identity.user, credentials: [credential.name: parameters], allowSecrets: allowSecrets,
            namedCredentialName: named.name, namedCredentialURL: named.url.absoluteString,
            maxValueLength: settings.maxFormulaValueLength)
    }

    /// Evaluates `{!...}` blocks in a buffered textual body when the named credential allows it
    /// (bodies larger than `retry_body_buffer_bytes` are streamed and never evaluated).
    func renderBody(_ body: ByteBuffer?, token: IssuedToken?) throws -> ByteBuffer? {
        guard named.allowFormulasInBody, var body,
            BodyTemplate.isTextual(contentType: incoming.first { $0.0.lowercased() == "content-type" }?.1)
        else { return body }
        let bytes = body.readBytes(length: body.readableBytes) ?? []
        guard BodyTemplate.containsBlocks(bytes) else { return ByteBuffer(bytes: bytes) }
        switch BodyTemplate.render(bytes, context: formulaContext(token: token, allowSecrets: true)) {
        case .success(let rendered): return ByteBuffer(bytes: rendered)
        case .failure(let failure):
            throw Problem.formulaFailed(named.name, location: "request body", message: failure.description)
        }
    }

    func request(token: IssuedToken?, body: HTTPClientRequest.Body?) throws -> HTTPClientRequest {
        // Custom headers: the named credential's, then the external credential's.
        var custom: [(String, String)] = []
        let secretsContext = formulaContext(token: token, allowSecrets: named.allowFormulasInHeaders)
        let plainContext = formulaContext(token: token, allowSecrets: false)
        for (h, fromNamed) in OutboundHeaders.customHeaderOrder(
            named: named.customHeaders, external: credential.customHeaders)
        {
            let location =
                fromNamed
                ? "named_credential \(named.name) custom_header \(h.name)"
                : "external_credential \(credential.name) custom_header \(h.name)"
            custom.append((h.name, try evaluate(h.value, fromNamed ? secretsContext : plainContext, location)))
        }
        var incoming = self.incoming
        if named.allowFormulasInHeaders {
            for i in incoming.indices where incoming[i].1.contains("{!") && !isIdentityHeader(incoming[i].0) {
                let formula: Formula
                do { formula = try Formula(parsing: incoming[i].1) } catch {
                    throw Problem.formulaFailed(
                        named.name, location: "request header \(incoming[i].0)", message: error.description)
                }
                incoming[i].1 = try evaluate(formula, secretsContext, "request header \(incoming[i].0)")
            }
        }
        let authorization = named.generateAuthorizationHeader ? token?.authorizationValue : nil
        let headers = OutboundHeaders.build(
            incoming: incoming, isIdentityHeader: isIdentityHeader, customHeaders: custom, authorization: authorization,
            host: named.hostHeader, via: CalloutForwarder.via)
        var request = HTTPClientRequest(url: targetURL)
        request.method = head.method
        request.headers = HTTPHeaders(headers)
        request.body = body
        if let tlsConfiguration { request.tlsConfiguration = tlsConfiguration }
        return request
    }

    private func evaluate(_ formula: Formula, _ context: FormulaContext, _ location: String) throws -> String {
        do {
            return try formula.evaluate(in: context)
        } catch {
            throw Problem.formulaFailed(named.name, location: location, message: error.description)
        }
    }
}
