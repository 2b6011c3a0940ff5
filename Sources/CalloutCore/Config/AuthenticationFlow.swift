/// How an external credential obtains its tokens (`authentication_flow`).
public enum AuthenticationFlow: String, Sendable, CaseIterable, Hashable {
    /// Client credentials grant; the client authenticates with a signed JWT (RFC 7523 §2.2).
    case clientCredentialsJWTAssertion = "client_credentials_jwt_assertion"
    /// Client credentials grant; the client authenticates with a secret (RFC 6749 §2.3.1) or a
    /// TLS client certificate (RFC 8705).
    case clientCredentialsClientSecret = "client_credentials_client_secret"
    /// The signed JWT is the authorization grant itself (RFC 7523 §2.1), as Salesforce's JWT
    /// bearer flow.
    case jwtBearer = "jwt_bearer"

    /// Whether the flow signs a JWT (and so needs `signing_certificate`).
    public var signsJWT: Bool { self != .clientCredentialsClientSecret }

    /// The `client_authentication` values this flow accepts, the default first.
    public var clientAuthentications: [ClientAuthentication] {
        switch self {
        case .clientCredentialsJWTAssertion: [.privateKeyJWT]
        case .clientCredentialsClientSecret: [.basic, .post, .tlsClientAuth]
        case .jwtBearer: [.none, .basic, .post, .tlsClientAuth]
        }
    }
}

/// How the client proves who it is at the token endpoint (`client_authentication`).
public enum ClientAuthentication: String, Sendable, CaseIterable, Hashable {
    /// The signed client assertion (the assertion flow; never written in a file).
    case privateKeyJWT = "private_key_jwt"
    /// `Authorization: Basic` with the form-urlencoded client id and secret (RFC 6749 §2.3.1).
    case basic
    /// `client_id` and `client_secret` in the form body (RFC 6749 §2.3.1).
    case post
    /// The TLS client certificate `identity_provider_client_certificate` (RFC 8705 §2.1).
    case tlsClientAuth = "tls_client_auth"
    /// No client authentication (the JWT bearer grant authenticates the client by its `iss`).
    case none

    /// Whether each principal needs `client_secret_env` or `client_secret_file`.
    public var usesClientSecret: Bool { self == .basic || self == .post }
}

/// Where a principal's client secret is read from, at start and on every reload. A secret is
/// never written in the configuration file.
public struct ClientSecretSource: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// `client_secret_env`: an environment variable's name.
        case environment(String)
        /// `client_secret_file`: an absolute path (a relative one resolved beside the file).
        case file(String)
    }

    public var kind: Kind
    /// Where the key was written (`external_credential[0].principal[1].client_secret_env`).
    public var keyPath: String

    public init(_ kind: Kind, keyPath: String) {
        self.kind = kind
        self.keyPath = keyPath
    }
}
