import CalloutTokens

extension DevelopmentIdentityProvider {
    /// Checks a client assertion: `(clientId, assertion, audience)`; `audience` is the token
    /// endpoint URL as this server knows it.
    public typealias VerifyAssertion =
        @Sendable (_ clientId: String, _ assertion: String, _ audience: String) -> Result<
            Void, AssertionRejection
        >

    /// Why an assertion was refused; sent back as the `error_description` of `invalid_client`.
    public struct AssertionRejection: Error, Sendable, Equatable {
        public var reason: String
        public init(_ reason: String) { self.reason = reason }
    }

    /// A failure to simulate, settable while the server runs.
    public enum Fault: Sendable, Equatable {
        case none
        /// An RFC 6749 §5.2 error answer.
        case oauthError(status: Int, error: String)
        /// An RFC 6749 §5.2 error answer with this `error_description`.
        case oauthErrorDescribed(status: Int, error: String, description: String)
        /// A bare 5xx answer.
        case serverError(Int)
        /// 429 with `Retry-After: <seconds>`.
        case tooManyRequests(retryAfter: Int)
        /// Answers normally after this many seconds (scheduled on the event loop); metadata too.
        case slow(seconds: Double)
        /// 200 with a body that is not JSON.
        case malformedJSON
        /// 200 with a JSON body without `access_token`.
        case missingAccessToken
        /// Issues the token with this `expires_in` (0, negative, huge...).
        case expiresIn(Int)
        /// Closes the connection without answering.
        case closeConnection
        /// The metadata names this issuer instead of the provider's own.
        case metadataIssuer(String)
        /// The metadata endpoint `path` (nil: both) answers `status` with `body` (and `Location`
        /// when given); token requests are answered as usual.
        case metadataAnswer(path: String?, status: Int, body: String, location: String? = nil)
    }

    public struct Configuration: Sendable {
        /// Address to bind (default 127.0.0.1) and port (default 0: any free port).
        public var host: String
        public var port: Int
        public var tokenPath: String
        /// RFC 7662-style introspection (`POST token=…` → `{"active":…}`).
        public var introspectionPath: String
        /// `expires_in` of issued tokens (default 300).
        public var expiresIn: Int
        /// Serve HTTPS with this certificate and key; plain HTTP when nil.
        public var tls: DevelopmentTLSMaterial?
        /// Larger request bodies are refused with 413 (default 64 KiB).
        public var maxRequestBodyBytes: Int
        /// Oldest recorded requests are dropped past this (default 1,000).
        public var maxRecordedRequests: Int
        /// Oldest issued tokens are forgotten past this (default 10,000).
        public var maxIssuedTokens: Int

        public init(
            host: String = "127.0.0.1",
            port: Int = 0,
            tokenPath: String = "/oauth2/token",
            introspectionPath: String = "/introspect",
            expiresIn: Int = 300,
            tls: DevelopmentTLSMaterial? = nil,
            maxRequestBodyBytes: Int = 64 * 1024,
            maxRecordedRequests: Int = 1_000,
            maxIssuedTokens: Int = 10_000
        ) {
            self.host = host
            self.port = port
            self.tokenPath = tokenPath
            self.introspectionPath = introspectionPath
            self.expiresIn = expiresIn
            self.tls = tls
            self.maxRequestBodyBytes = maxRequestBodyBytes
            self.maxRecordedRequests = maxRecordedRequests
            self.maxIssuedTokens = maxIssuedTokens
        }
    }

    /// One request to the token endpoint, as received. Holds the assertion (in `form` and
    /// `body`): test data, redacted from the description.
    public struct RecordedRequest: Sendable, CustomStringConvertible {
        /// Unix seconds.
        public var receivedAt: Double
        public var method: String
        public var path: String
        public var contentType: String?
        public var accept: String?
        public var body: String
        public var form: [(name: String, value: String)]
        /// The assertion's payload claims, values written as text (not verified).
        public var claims: [String: String]
        /// HTTP status answered (0 when the connection was closed instead).
        public var status: Int
        /// The `Authorization` header (client authentication `basic`): a secret, test data.
        public var authorization: String?
        /// The DER of the TLS client certificate presented, if any.
        public var clientCertificateDER: [UInt8]?

        public var clientId: String? { value("client_id") }
        public var scope: String? { value("scope") }
        public var grantType: String? { value("grant_type") }
        public var assertion: String? { value("client_assertion") }

        public func value(_ name: String) -> String? { form.first { $0.name == name }?.value }

        public var description: String {
            "RecordedRequest(\(method) \(path), client_id: \(clientId ?? "-"), scope: \(scope ?? "-"), status: \(status))"
        }
    }

    /// What the provider knows of a token it issued.
    public struct IssuedToken: Sendable, Equatable {
        public var clientId: String
        public var scope: String?
        /// Unix seconds.
        public var expiresAt: Double
    }
}
