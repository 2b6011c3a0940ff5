import Foundation

/// The keys of an external credential that say how it gets its tokens: the flow, how the client
/// authenticates, where the token endpoint is, and where each principal's secret lives.
extension ConfigBuilder {
    struct Authentication {
        var flow: AuthenticationFlow = .clientCredentialsJWTAssertion
        var clientAuthentication: ClientAuthentication = .privateKeyJWT
        var identityProviderURL: URL?
        var issuer: URL?
    }

    /// Keys that only a flow that signs a JWT reads.
    static let signingKeys = [
        "signing_certificate", "signing_algorithm", "jwt_claims", "jwt_header", "jwt_expiration_seconds",
    ]

    static let secretRefusal =
        "a secret is never written in the configuration file: name an environment variable with client_secret_env = \"VAR\" or a file with client_secret_file = \"path\""

    /// Reads `authentication_flow`, `client_authentication`, `identity_provider_url` and
    /// `identity_provider_issuer`.
    func authentication(_ t: TOMLCursor, insecure: Bool) -> Authentication {
        var auth = Authentication()
        if let f = t.string("authentication_flow") {
            if let flow = AuthenticationFlow(rawValue: f) {
                auth.flow = flow
            } else {
                t.issue(
                    "authentication_flow",
                    "'\(f)' is not supported; use one of \(AuthenticationFlow.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")) (\"\(AuthenticationFlow.clientCredentialsJWTAssertion.rawValue)\" is the default)"
                )
            }
        }
        let allowed = auth.flow.clientAuthentications
        auth.clientAuthentication = allowed[0]
        if let c = t.string("client_authentication") {
            if auth.flow == .clientCredentialsJWTAssertion {
                t.issue(
                    "client_authentication",
                    "is not used with authentication_flow \"\(auth.flow.rawValue)\": the client authenticates with its signed assertion; remove it"
                )
            } else if let value = ClientAuthentication(rawValue: c), allowed.contains(value) {
                auth.clientAuthentication = value
            } else {
                let names = allowed.enumerated().map { "\"\($1.rawValue)\"" + ($0 == 0 ? " (the default)" : "") }
                t.issue(
                    "client_authentication",
                    "'\(c)' is not supported with authentication_flow \"\(auth.flow.rawValue)\"; use one of \(names.joined(separator: ", "))"
                )
            }
        }
        let url = t.string("identity_provider_url")
        let issuer = t.string("identity_provider_issuer")
        switch (url, issuer) {
        case (nil, nil):
            if !t.has("identity_provider_url") && !t.has("identity_provider_issuer") {
                t.issue(
                    "identity_provider_url",
                    "is required (or identity_provider_issuer, to discover the token endpoint from the issuer's metadata)"
                )
            }
        case (.some, .some):
            t.issue(
                "identity_provider_issuer",
                "give identity_provider_url (the token endpoint) or identity_provider_issuer (to discover it), not both"
            )
        case (let url?, nil):
            auth.identityProviderURL = validURL(t, "identity_provider_url", url, insecure: insecure, allowQuery: true)
        case (nil, let issuer?):
            auth.issuer = validURL(t, "identity_provider_issuer", issuer, insecure: insecure, allowQuery: false)
        }
        if t.consume("client_secret") { t.issue("client_secret", Self.secretRefusal) }
        if !auth.flow.signsJWT {
            for key in Self.signingKeys where t.consume(key) {
                t.issue(
                    key,
                    "is not used with authentication_flow \"\(auth.flow.rawValue)\", which signs no JWT; remove it (or use \"client_credentials_jwt_assertion\" or \"jwt_bearer\")"
                )
            }
        }
        return auth
    }

    /// A principal's `client_secret_env` or `client_secret_file`; `client_secret` is refused.
    func clientSecretSource(_ t: TOMLCursor) -> ClientSecretSource? {
        if t.consume("client_secret") { t.issue("client_secret", Self.secretRefusal) }
        let env = t.string("client_secret_env")
        let file = t.string("client_secret_file")
        if env != nil && file != nil {
            t.issue("client_secret_file", "give client_secret_env or client_secret_file, not both")
            return nil
        }
        if let env {
            guard Self.isEnvironmentName(env) else {
                t.issue(
                    "client_secret_env",
                    "must be the name of an environment variable (letters, digits, underscores), not a secret")
                return nil
            }
            return ClientSecretSource(.environment(env), keyPath: t.keyPath("client_secret_env"))
        }
        if let file {
            guard !file.isEmpty else {
                t.issue("client_secret_file", "must be the path of a file holding the secret")
                return nil
            }
            return ClientSecretSource(.file(resolvePath(file)), keyPath: t.keyPath("client_secret_file"))
        }
        return nil
    }

    /// The rules that tie the flow, the client authentication and the principals' secrets together.
    func checkAuthentication(
        _ t: TOMLCursor, _ auth: Authentication, principals: [TOMLCursor],
        identityProviderClientCertificate: String?
    ) {
        let method = auth.clientAuthentication
        if method == .tlsClientAuth && identityProviderClientCertificate == nil {
            t.issue(
                "client_authentication",
                "\"tls_client_auth\" needs identity_provider_client_certificate: the [[certificate]] presented to the identity provider"
            )
        }
        for p in principals {
            let hasSecret = p.has("client_secret_env") || p.has("client_secret_file")
            if method.usesClientSecret && !hasSecret && !p.has("client_secret") {
                p.issue(
                    nil,
                    "needs client_secret_env or client_secret_file: external credential uses client_authentication \"\(method.rawValue)\""
                )
            } else if !method.usesClientSecret && hasSecret {
                p.issue(
                    p.has("client_secret_env") ? "client_secret_env" : "client_secret_file",
                    "is used only with client_authentication \"basic\" or \"post\"; this external credential authenticates with \(method == .privateKeyJWT ? "its signed assertion" : "\"\(method.rawValue)\"")"
                )
            }
        }
    }
}
