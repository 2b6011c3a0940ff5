import CalloutCore
import CalloutTokens

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

extension DevelopmentIdentityProvider {
    /// A client of the flows besides the client assertion: which grant it uses and how it
    /// authenticates. The provider checks both on every request.
    public struct ClientRegistration: Sendable {
        public enum Grant: Sendable {
            /// `grant_type=client_credentials`.
            case clientCredentials
            /// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, the grant signed with
            /// `key` (`iss` = client id; `sub` any user), `aud` = `audience` (nil: this token endpoint).
            case jwtBearer(
                key: VerificationKey, algorithm: SigningAlgorithm, audience: String?, maxLifetimeSeconds: Int64)
        }

        public enum Authentication: Sendable, Equatable {
            /// `Authorization: Basic` with the form-urlencoded client id and this secret.
            case basic(secret: String)
            /// `client_id` and `client_secret` in the form body.
            case post(secret: String)
            /// This TLS client certificate (DER) and `client_id` in the form body.
            case tlsCertificate(der: [UInt8])
            /// No client authentication (a JWT bearer grant alone).
            case none

            var name: String {
                switch self {
                case .basic: "client_secret_basic"
                case .post: "client_secret_post"
                case .tlsCertificate: "tls_client_auth"
                case .none: "none"
                }
            }
        }

        public var grant: Grant
        public var authentication: Authentication

        public init(grant: Grant, authentication: Authentication) {
            self.grant = grant
            self.authentication = authentication
        }
    }

    /// What the client presented to authenticate itself.
    private struct Presented {
        var clientId: String?
        var authentication: ClientRegistration.Authentication
    }

    /// Answers the client-secret, TLS certificate and JWT bearer requests; nil for a client
    /// assertion request (answered as before).
    func respondToRegisteredFlow(_ request: RecordedRequest, fault: Fault) -> IdentityProviderReply? {
        let isBearer = request.grantType == TokenRequest.jwtBearerGrantType
        let hasAssertion = request.value("client_assertion") != nil || request.value("client_assertion_type") != nil
        guard isBearer || (request.grantType == "client_credentials" && !hasAssertion) else { return nil }
        let presented: Presented
        switch presentedAuthentication(request) {
        case .success(let value): presented = value
        case .failure(let error): return error.reply
        }
        if isBearer { return respondToBearer(request, presented: presented, fault: fault) }
        guard let clientId = presented.clientId else {
            return .oauthError(401, "invalid_client", "no client authentication and no client_id")
        }
        guard let registration = state.withLock({ $0.registrations[clientId] }),
            case .clientCredentials = registration.grant
        else {
            return .oauthError(401, "invalid_client", "unknown client")
        }
        if let rejection = check(presented, against: registration) { return rejection }
        return issue(clientId: clientId, scope: request.scope, fault: fault)
    }

    private func respondToBearer(_ request: RecordedRequest, presented: Presented, fault: Fault)
        -> IdentityProviderReply
    {
        guard let grant = request.value("assertion"), !grant.isEmpty else {
            return .oauthError(400, "invalid_request", "assertion is required")
        }
        guard let issuer = JWTPayload.claims(of: grant)?["iss"]?.stringValue else {
            return .oauthError(400, "invalid_grant", "the assertion has no iss")
        }
        guard let registration = state.withLock({ $0.registrations[issuer] }),
            case .jwtBearer(let key, let algorithm, let audience, let lifetime) = registration.grant
        else {
            return .oauthError(400, "invalid_grant", "unknown issuer")
        }
        if let clientId = presented.clientId, clientId != issuer {
            return .oauthError(401, "invalid_client", "the authenticated client is not the assertion's issuer")
        }
        if let rejection = check(presented, against: registration) { return rejection }
        var verifier = AssertionVerifier(
            key: key, expectedAudience: audience ?? tokenEndpointURL, expectedClientId: issuer,
            allowedAlgorithms: [algorithm], maxLifetimeSeconds: lifetime, replayCache: grantReplayCache)
        verifier.subjectIsClient = false
        do {
            _ = try verifier.verify(grant, now: Int64(wallClock()))
        } catch let error as AssertionVerificationError {
            return .oauthError(400, "invalid_grant", error.description)
        } catch {
            return .oauthError(400, "invalid_grant", "the assertion does not verify")
        }
        return issue(clientId: issuer, scope: request.scope, fault: fault)
    }

    /// Basic header, form secret, TLS certificate or nothing; more than one method is refused
    /// (RFC 6749 §2.3).
    private func presentedAuthentication(_ request: RecordedRequest) -> Result<Presented, ReplyError> {
        let formSecret = request.value("client_secret")
        if let header = request.authorization {
            guard header.lowercased().hasPrefix("basic "),
                let decoded = Base64.decode(String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
                let text = String(bytes: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
            else {
                return .failure(ReplyError(.oauthError(401, "invalid_client", "malformed Basic credentials")))
            }
            guard formSecret == nil else {
                return .failure(ReplyError(.oauthError(400, "invalid_request", "more than one client authentication")))
            }
            // RFC 6749 §2.3.1: both parts are form-urlencoded before they are joined.
            let id = FormURLEncoding.decode("v=" + text[..<colon])[0].value
            let secret = FormURLEncoding.decode("v=" + text[text.index(after: colon)...])[0].value
            if let formId = request.clientId, formId != id {
                return .failure(
                    ReplyError(.oauthError(400, "invalid_request", "client_id differs from the Basic user")))
            }
            return .success(Presented(clientId: id, authentication: .basic(secret: secret)))
        }
        if let formSecret {
            return .success(Presented(clientId: request.clientId, authentication: .post(secret: formSecret)))
        }
        if let certificate = request.clientCertificateDER, request.clientId != nil {
            return .success(Presented(clientId: request.clientId, authentication: .tlsCertificate(der: certificate)))
        }
        return .success(Presented(clientId: request.clientId, authentication: .none))
    }

    /// Nil when the presented authentication is the registered one.
    private func check(_ presented: Presented, against registration: ClientRegistration) -> IdentityProviderReply? {
        let expected = registration.authentication
        if case .none = expected {
            if case .none = presented.authentication { return nil }
            if case .tlsCertificate = presented.authentication { return nil }
        }
        guard presented.authentication.name == expected.name else {
            return .oauthError(
                401, "invalid_client",
                "client must authenticate with \(expected.name), not \(presented.authentication.name)")
        }
        guard presented.authentication == expected else {
            return .oauthError(
                401, "invalid_client",
                expected.name == "tls_client_auth" ? "client certificate does not match" : "wrong client secret")
        }
        return nil
    }

    /// RFC 8414 and OpenID Connect metadata of this provider (issuer: ``baseURL``).
    func metadata(_ request: IdentityProviderHTTPHandler.Request) -> IdentityProviderReply? {
        guard
            request.path == "/.well-known/oauth-authorization-server"
                || request.path == "/.well-known/openid-configuration"
        else { return nil }
        guard request.method == "GET" else { return .oauthError(405, "invalid_request", "use GET") }
        let fault = state.withLock { state in
            state.metadataRequestCount += 1
            return state.fault
        }
        if case .metadataAnswer(let path, let status, let body, let location) = fault,
            path == nil || path == request.path
        {
            return .json(status, body, headers: location.map { [("Location", $0)] } ?? [])
        }
        let issuer: String =
            if case .metadataIssuer(let other) = fault { other } else { baseURL }
        var reply = IdentityProviderReply.json(
            200,
            JSONValue.object([
                "issuer": .string(issuer), "token_endpoint": .string(tokenEndpointURL),
                "token_endpoint_auth_methods_supported": .array(
                    ["private_key_jwt", "client_secret_basic", "client_secret_post", "tls_client_auth"].map {
                        .string($0)
                    }),
                "grant_types_supported": .array(
                    ["client_credentials", "urn:ietf:params:oauth:grant-type:jwt-bearer"].map { .string($0) }),
            ]).jsonText
        )
        if case .slow(let seconds) = fault { reply.delay = seconds }
        return reply
    }
}

/// An early answer carried through a `Result`.
struct ReplyError: Error {
    let reply: IdentityProviderReply
    init(_ reply: IdentityProviderReply) { self.reply = reply }
}
