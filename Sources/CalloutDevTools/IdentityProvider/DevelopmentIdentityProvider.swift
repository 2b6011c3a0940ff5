import CalloutCore
import CalloutTokens
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// An OAuth 2.0 token endpoint for tests and the offline demo: client credentials with a JWT
/// client assertion (RFC 7523), verified by an injected closure. Issues opaque random tokens,
/// records every request, can inject faults at run time, and can tell whether a token is one
/// it issued. Binds to loopback by default; prints nothing (logs to the given `Logger`).
public final class DevelopmentIdentityProvider: Sendable {
    public let configuration: Configuration
    /// The bound port.
    public let port: Int
    private let channel: any Channel
    let state: LockedState<IdentityProviderState>
    /// `jti`s of JWT bearer grants already used.
    let grantReplayCache = JTIReplayCache()
    private let verifier: VerifyAssertion
    private let logger: Logger
    let wallClock: @Sendable () -> Double

    /// Starts the server.
    ///
    /// - Parameters:
    ///   - clients: registered client ids; others get `invalid_client`.
    ///   - verifier: checks each assertion.
    ///   - registrations: clients of the other flows (client secret, TLS client certificate,
    ///     JWT bearer grant) by client id.
    ///   - wallClock: Unix seconds (token expiry, recorded times).
    public static func start(
        configuration: Configuration = Configuration(),
        clients: Set<String>,
        verifier: @escaping VerifyAssertion,
        registrations: [String: ClientRegistration] = [:],
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "callout.dev-idp", factory: { _ in SwiftLogNoOpLogHandler() }),
        wallClock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) async throws -> DevelopmentIdentityProvider {
        // Clients may present a certificate (tls_client_auth, RFC 8705); any certificate is
        // accepted at the handshake (self-signed ones too) and compared with the client's
        // registration at the token endpoint.
        let sslContext = try configuration.tls.map { try $0.makeServerContext(requestClientCertificate: true) }
        let box = ProviderBox()
        let maxBody = configuration.maxRequestBodyBytes
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLServerHandler(
                                context: sslContext,
                                customVerificationCallback: { _, promise in promise.succeed(.certificateVerified) }))
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        IdentityProviderHTTPHandler(
                            maxBodyBytes: maxBody, respond: { box.provider?.handle($0) }))
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        guard let port = channel.localAddress?.port else {
            try? await channel.close()
            throw ChannelError.unknownLocalAddress
        }
        let provider = DevelopmentIdentityProvider(
            configuration: configuration, port: port, channel: channel,
            state: LockedState(IdentityProviderState(clients: clients, registrations: registrations)),
            verifier: verifier,
            logger: logger, wallClock: wallClock)
        box.provider = provider
        logger.info(
            "development identity provider listening",
            metadata: ["url": .string(provider.tokenEndpointURL)])
        return provider
    }

    private init(
        configuration: Configuration, port: Int, channel: any Channel,
        state: LockedState<IdentityProviderState>,
        verifier: @escaping VerifyAssertion, logger: Logger, wallClock: @escaping @Sendable () -> Double
    ) {
        self.configuration = configuration
        self.port = port
        self.channel = channel
        self.state = state
        self.verifier = verifier
        self.logger = logger
        self.wallClock = wallClock
    }

    /// `https://127.0.0.1:<port>` (or `http://` without TLS).
    public var baseURL: String {
        "\(configuration.tls == nil ? "http" : "https")://\(HostPort(host: configuration.host, port: port))"
    }

    /// The token endpoint URL; also the audience assertions must carry.
    public var tokenEndpointURL: String { baseURL + configuration.tokenPath }

    public var fault: Fault { state.withLock { $0.fault } }

    public func setFault(_ fault: Fault) { state.withLock { $0.fault = fault } }

    /// Registers (or replaces) a client of the client-secret, TLS certificate or JWT bearer flows.
    public func register(clientId: String, _ registration: ClientRegistration) {
        state.withLock { $0.registrations[clientId] = registration }
    }

    /// Requests to the token endpoint, oldest first (at most `maxRecordedRequests`).
    public var requests: [RecordedRequest] { state.withLock { $0.requests } }

    /// Every request to the token endpoint so far, including those no longer recorded.
    public var tokenRequestCount: Int { state.withLock { $0.tokenRequestCount } }

    /// Requests to the metadata endpoints (`/.well-known/...`) so far.
    public var metadataRequestCount: Int { state.withLock { $0.metadataRequestCount } }

    /// The client and scope of a token this provider issued, if it is unexpired and not revoked.
    public func isValid(token: String) -> IssuedToken? {
        let now = wallClock()
        return state.withLock { state in
            guard let info = state.issued[token], info.expiresAt > now else { return nil }
            return info
        }
    }

    public func revoke(token: String) { _ = state.withLock { $0.issued.removeValue(forKey: token) } }

    public func shutdown() async throws {
        try await channel.close()
    }

    // MARK: Handling

    func handle(_ request: IdentityProviderHTTPHandler.Request) -> IdentityProviderReply {
        if request.path == configuration.introspectionPath {
            return introspect(request)
        }
        if let metadata = metadata(request) { return metadata }
        guard request.path == configuration.tokenPath else {
            return .oauthError(404, "not_found", "no such endpoint")
        }
        guard request.method == "POST" else {
            return .oauthError(405, "invalid_request", "use POST")
        }
        let body = String(decoding: request.body, as: UTF8.self)
        let form = FormURLEncoding.decode(body)
        var recorded = RecordedRequest(
            receivedAt: wallClock(), method: request.method, path: request.path,
            contentType: request.contentType, accept: request.accept, body: body, form: form, claims: [:],
            status: 0)
        recorded.authorization = request.authorization
        recorded.clientCertificateDER = request.clientCertificateDER
        if let assertion = recorded.assertion ?? recorded.value("assertion"),
            let claims = JWTPayload.claims(of: assertion)
        {
            recorded.claims = claims.mapValues(\.textValue)
        }
        let fault = state.withLock { state in
            state.tokenRequestCount += 1
            return state.fault
        }
        var reply = respond(to: recorded, fault: fault)
        if case .slow(let seconds) = fault { reply.delay = seconds }
        recorded.status = reply.closeWithoutAnswer ? 0 : reply.status
        let limit = configuration.maxRecordedRequests
        state.withLock { $0.record(recorded, limit: limit) }
        logger.debug(
            "token request",
            metadata: ["client_id": .string(recorded.clientId ?? "-"), "status": "\(recorded.status)"])
        return reply
    }

    private func respond(to request: RecordedRequest, fault: Fault) -> IdentityProviderReply {
        switch fault {
        case .oauthError(let status, let error):
            return .oauthError(status, error, "injected fault")
        case .oauthErrorDescribed(let status, let error, let description):
            return .oauthError(status, error, description)
        case .serverError(let status):
            return .json(status, #"{"error":"server_error"}"#)
        case .tooManyRequests(let retryAfter):
            return .json(429, #"{"error":"slow_down"}"#, headers: [("Retry-After", String(retryAfter))])
        case .malformedJSON:
            return .json(200, #"{"access_token": "unterminated"#)
        case .closeConnection:
            return IdentityProviderReply(status: 0, closeWithoutAnswer: true)
        case .none, .slow, .missingAccessToken, .expiresIn, .metadataIssuer, .metadataAnswer:
            break
        }
        if let reply = respondToRegisteredFlow(request, fault: fault) { return reply }
        guard request.grantType == "client_credentials" else {
            return .oauthError(400, "unsupported_grant_type", "grant_type must be client_credentials")
        }
        guard request.value("client_assertion_type") == TokenRequest.assertionType else {
            return .oauthError(400, "invalid_request", "client_assertion_type must be jwt-bearer")
        }
        guard let clientId = request.clientId, let assertion = request.assertion, !assertion.isEmpty
        else {
            return .oauthError(400, "invalid_request", "client_id and client_assertion are required")
        }
        guard state.withLock({ $0.clients.contains(clientId) }) else {
            return .oauthError(401, "invalid_client", "unknown client")
        }
        if case .failure(let rejection) = verifier(clientId, assertion, tokenEndpointURL) {
            return .oauthError(401, "invalid_client", rejection.reason)
        }
        return issue(clientId: clientId, scope: request.scope, fault: fault)
    }

    /// A token for `clientId` (or the fault's malformed answer).
    func issue(clientId: String, scope: String?, fault: Fault) -> IdentityProviderReply {
        if case .missingAccessToken = fault {
            return .json(200, #"{"token_type":"Bearer","expires_in":300}"#)
        }
        var expiresIn = configuration.expiresIn
        if case .expiresIn(let value) = fault { expiresIn = value }
        let token = makeOpaqueToken()
        let info = IssuedToken(clientId: clientId, scope: scope, expiresAt: wallClock() + Double(expiresIn))
        let limit = configuration.maxIssuedTokens
        state.withLock { $0.remember(token, info, limit: limit) }
        var body: [String: JSONValue] = [
            "access_token": .string(token), "token_type": .string("Bearer"), "expires_in": .integer(Int64(expiresIn)),
        ]
        if let scope { body["scope"] = .string(scope) }
        return .json(200, JSONValue.object(body).jsonText)
    }

    private func introspect(_ request: IdentityProviderHTTPHandler.Request) -> IdentityProviderReply {
        let form = FormURLEncoding.decode(String(decoding: request.body, as: UTF8.self))
        guard request.method == "POST", let token = form.first(where: { $0.name == "token" })?.value,
            let info = isValid(token: token)
        else {
            return .json(200, #"{"active":false}"#)
        }
        var body: [String: JSONValue] = [
            "active": .bool(true), "client_id": .string(info.clientId), "exp": .integer(Int64(info.expiresAt)),
        ]
        if let scope = info.scope { body["scope"] = .string(scope) }
        return .json(200, JSONValue.object(body).jsonText)
    }
}

/// Lets the channel initializer reach the provider, which is made after the bind.
private final class ProviderBox: Sendable {
    private let state = LockedState<DevelopmentIdentityProvider?>(nil)
    var provider: DevelopmentIdentityProvider? {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }
}
