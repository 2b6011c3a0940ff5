import AsyncHTTPClient
import CalloutCore
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
#if canImport(Darwin)
    import Darwin
#elseif canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Posts client-credentials token requests with a JWT client assertion to an identity provider
/// and parses the answer.
///
/// The `HTTPClient` is the owner's: create it with
/// `HTTPClient.Configuration(redirectConfiguration: .disallow)` (a token endpoint that redirects
/// must not receive the assertion a second time somewhere else), give it the trust roots the
/// identity provider needs, and shut it down yourself.
///
/// Nothing this client logs or throws contains the client assertion or the access token.
public struct TokenEndpointClient: Sendable {
    public struct Limits: Sendable, Equatable {
        /// Whole-request deadline (default 10 s).
        public var timeout: Duration
        /// Largest accepted response body (default 64 KiB); larger is a malformed response.
        public var maxResponseBytes: Int
        /// Lifetime when the answer has no `expires_in` and the token is not a JWT with `exp`
        /// (default 300 s).
        public var defaultLifetimeSeconds: Int
        /// Longer `expires_in` values are capped to this (default 86,400 s = 24 h).
        public var maxLifetimeSeconds: Int
        /// The identity provider's `error_description` is cut to this many characters (default 256).
        public var maxErrorDescriptionLength: Int

        public init(
            timeout: Duration = .seconds(10),
            maxResponseBytes: Int = 64 * 1024,
            defaultLifetimeSeconds: Int = 300,
            maxLifetimeSeconds: Int = 86_400,
            maxErrorDescriptionLength: Int = 256
        ) {
            self.timeout = timeout
            self.maxResponseBytes = maxResponseBytes
            self.defaultLifetimeSeconds = defaultLifetimeSeconds
            self.maxLifetimeSeconds = maxLifetimeSeconds
            self.maxErrorDescriptionLength = maxErrorDescriptionLength
        }
    }

    /// One finished token request, for metrics: names and an outcome code, never a token or assertion.
    public struct FetchEvent: Sendable {
        public var externalCredential: String?
        public var principal: String?
        /// `success`, `cancelled`, or the ``TokenExchangeError`` code.
        public var outcome: String
        public var duration: Duration
    }

    let httpClient: HTTPClient
    public let limits: Limits
    let logger: Logger
    private let wallClock: @Sendable () -> Double
    private let onFetch: (@Sendable (FetchEvent) -> Void)?

    /// - Parameters:
    ///   - wallClock: Unix seconds, for `Retry-After` dates and JWT `exp`.
    ///   - onFetch: told about every finished token request (metrics).
    public init(
        httpClient: HTTPClient,
        limits: Limits = Limits(),
        logger: Logger,
        wallClock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
        onFetch: (@Sendable (FetchEvent) -> Void)? = nil
    ) {
        self.httpClient = httpClient
        self.limits = limits
        self.logger = logger
        self.wallClock = wallClock
        self.onFetch = onFetch
    }

    private func report(_ request: TokenRequest, _ outcome: String, since started: ContinuousClock.Instant) {
        onFetch?(
            FetchEvent(
                externalCredential: request.externalCredential, principal: request.principal, outcome: outcome,
                duration: ContinuousClock.now - started))
    }

    /// Gets a token. Throws ``TokenExchangeError`` (or `CancellationError` if the task is
    /// cancelled).
    ///
    /// Every exchange that reaches a verdict writes one audit line at info, `token exchange`, to
    /// match the identity provider's own logs: external credential, principal, client id, the
    /// signed assertion's `jti`, scope, outcome, the identity provider's HTTP status, duration,
    /// `expires_in` and the expiry as Unix seconds. Never the token or the assertion.
    public func fetchToken(_ request: TokenRequest) async throws -> TokenResponse {
        let started = ContinuousClock.now
        var logger = self.logger
        logger[metadataKey: "external_credential"] = request.externalCredential.map { .string($0) }
        logger[metadataKey: "principal"] = request.principal.map { .string($0) }
        logger[metadataKey: "client_id"] = .string(request.clientId)
        logger[metadataKey: "jti"] = request.assertionID.map { .string($0) }
        logger[metadataKey: "scope"] = .string(request.scope ?? "")
        var status: Int?
        func audit(_ outcome: String, _ extra: Logger.Metadata = [:]) {
            var metadata: Logger.Metadata = [
                "outcome": .string(outcome), "idp_status": .string(status.map(String.init) ?? "none"),
                "duration_ms": "\(milliseconds(since: started))",
            ]
            metadata.merge(extra) { $1 }
            logger.info("token exchange", metadata: metadata)
        }
        do {
            let response = try await exchange(request, logger: logger, status: &status)
            // A token whose whole lifetime went by during the exchange is never handed out.
            let elapsed = milliseconds(since: started)
            if elapsed >= Int64(response.expiresIn) * 1000 {
                throw TokenExchangeError.malformedResponse(
                    "the token expired before it arrived (expires_in \(response.expiresIn) s, exchange took \(elapsed) ms)"
                )
            }
            report(request, "success", since: started)
            audit(
                "success",
                [
                    "expires_in": "\(response.expiresIn)",
                    "expires_at": "\(Int64(wallClock()) + Int64(response.expiresIn))",
                    "token_type": .string(response.tokenType),
                ])
            return response
        } catch let error as TokenExchangeError {
            report(request, error.code, since: started)
            audit(error.code)
            logger.warning(
                "token fetch failed",
                metadata: [
                    "outcome": .string(error.code), "duration_ms": "\(milliseconds(since: started))",
                    "error": .string(error.description),
                ])
            throw error
        } catch {
            report(request, "cancelled", since: started)
            logger.debug("token fetch cancelled", metadata: ["outcome": "cancelled"])
            throw error
        }
    }

    private func exchange(_ request: TokenRequest, logger: Logger, status reported: inout Int?) async throws
        -> TokenResponse
    {
        try validate(request)
        let secrets = request.secrets
        var httpRequest = HTTPClientRequest(url: request.identityProviderURL)
        httpRequest.method = .POST
        httpRequest.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        httpRequest.headers.add(name: "Accept", value: "application/json")
        httpRequest.headers.add(name: "Cache-Control", value: "no-store")
        if let authorization = request.authorizationHeader {
            httpRequest.headers.add(name: "Authorization", value: authorization)
        }
        httpRequest.body = .bytes(ByteBuffer(string: request.formBody))
        if let tls = request.tlsConfiguration { httpRequest.tlsConfiguration = tls }

        let status: Int
        let retryAfter: String?
        let body: [UInt8]
        do {
            let response = try await httpClient.execute(
                httpRequest, timeout: timeAmount(limits.timeout), logger: nil)
            status = Int(response.status.code)
            reported = status
            retryAfter = response.headers.first(name: "Retry-After")
            if let length = response.headers.first(name: "Content-Length").flatMap(Int.init),
                length > limits.maxResponseBytes
            {
                throw TokenExchangeError.malformedResponse(
                    "response body larger than \(limits.maxResponseBytes) bytes")
            }
            var buffer = try await response.body.collect(upTo: limits.maxResponseBytes)
            body = buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch let error as TokenExchangeError {
            throw error
        } catch {
            throw try Self.transportError(error, secrets: secrets)
        }
        // Problem bodies carry a short, redacted error_description; its full text is for the
        // debug log only (the assertion still scrubbed out).
        if !(200...299).contains(status), logger.logLevel <= .debug,
            let full = JSONValue.object(from: body)?["error_description"]?.stringValue
        {
            logger.debug(
                "identity provider error_description",
                metadata: [
                    "error_description": .string(sanitize(full, removing: secrets, limit: limits.maxResponseBytes))
                ])
        }
        let parser = TokenResponseParser(limits: limits, secrets: secrets)
        return try parser.parse(status: status, retryAfter: retryAfter, body: body, now: wallClock())
    }

    private func validate(_ request: TokenRequest) throws(TokenExchangeError) {
        for parameter in request.additionalParameters
        where TokenRequest.reservedParameters.contains(parameter.name) {
            throw .invalidRequest("additional parameter \(parameter.name) is set by the client")
        }
        try Self.validateURL(request.identityProviderURL, what: "identity provider")
    }

    /// `https://`, or `http://` to a loopback host only.
    static func validateURL(_ url: String, what: String) throws(TokenExchangeError) {
        let lower = url.lowercased()
        if lower.hasPrefix("https://") { return }
        if lower.hasPrefix("http://") {
            let authority = lower.dropFirst("http://".count).prefix {
                $0 != "/" && $0 != "?" && $0 != "#"
            }
            let host =
                authority.hasPrefix("[")
                ? String(authority.dropFirst().prefix { $0 != "]" }) : String(authority.prefix { $0 != ":" })
            // An address, parsed: `127.evil.example` or `127.0.0.1@evil.example` are not loopback.
            if host == "localhost" || IPAddress.parse(host).map(HostCheck.isLoopbackAddress) == true { return }
            throw .invalidRequest("plain http is allowed only to loopback \(what)s")
        }
        throw .invalidRequest("\(what) URL must be https")
    }

    /// Maps a transport failure to a safe error. `CancellationError` is rethrown as is.
    static func transportError(_ error: any Error, secrets: [String]) throws -> TokenExchangeError {
        if error is CancellationError { throw error }
        func safe(_ text: String) -> String { sanitize(text, removing: secrets, limit: 200) }
        switch error {
        case let error as HTTPClientError:
            switch error {
            case .deadlineExceeded, .readTimeout, .writeTimeout, .connectTimeout, .tlsHandshakeTimeout,
                .getConnectionFromPoolTimeout:
                return .timedOut(safe(error.description))
            case .cancelled:
                throw CancellationError()
            case .remoteConnectionClosed:
                return .unreachable("connection closed by the identity provider")
            default:
                return .unreachable(safe(error.description))
            }
        case let error as NIOTooManyBytesError:
            return .malformedResponse(
                "response body larger than \(error.maxBytes.map(String.init) ?? "the limit") bytes")
        case is NIOSSLError, is BoringSSLError, is NIOSSLExtraError:
            return .unreachable(
                safe(TLSFailureText.describe(error, peer: "identity provider") ?? "TLS handshake failed"))
        case let error as IOError where error.errnoCode == ECONNREFUSED:
            return .unreachable("connection refused")
        case let error as NIOConnectionError:
            let refused = error.connectionErrors.contains {
                ($0.error as? IOError)?.errnoCode == ECONNREFUSED
            }
            return .unreachable(
                refused ? "connection refused" : "connection failed: \(safe(String(describing: error)))")
        case let error as ChannelError:
            if case .connectTimeout = error { return .timedOut("connect timeout") }
            return .unreachable("channel error: \(safe(String(describing: error)))")
        case let error as HTTPParserError:
            return .malformedResponse("invalid HTTP response: \(safe(String(describing: error)))")
        default:
            return .unreachable("\(type(of: error)): \(safe(String(describing: error)))")
        }
    }

    func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    private func milliseconds(since start: ContinuousClock.Instant) -> Int64 {
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
