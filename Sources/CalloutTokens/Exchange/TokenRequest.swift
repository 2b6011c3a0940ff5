import Foundation
import NIOSSL

/// One token request: by default the client-credentials grant with a JWT client assertion
/// (RFC 7523 §2.2); see ``Kind`` for the client-secret, TLS client certificate and JWT bearer
/// forms.
///
/// `clientAssertion` and any client secret are secrets: the description and mirror redact them.
public struct TokenRequest: Sendable {
    public static let assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    /// The JWT bearer grant (RFC 7523 §2.1).
    public static let jwtBearerGrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    /// Form fields the client sets itself; `additionalParameters` may not repeat them.
    public static let reservedParameters: Set<String> = [
        "grant_type", "client_id", "client_assertion_type", "client_assertion", "scope", "client_secret",
        "assertion",
    ]

    /// How the client authenticates when it does not sign a client assertion.
    public enum ClientCredential: Sendable {
        /// `Authorization: Basic` with the form-urlencoded client id and secret (RFC 6749 §2.3.1).
        case basic(ClientSecret)
        /// `client_id` and `client_secret` in the form body.
        case post(ClientSecret)
        /// The TLS client certificate; `client_id` in the form body (RFC 8705 §2.1).
        case tlsCertificate
        /// None: the grant alone identifies the client (the JWT bearer grant's `iss`).
        case none
    }

    /// The grant and how the client authenticates.
    public enum Kind: Sendable {
        /// Client credentials with `clientAssertion` as the client assertion.
        case clientAssertion
        /// Client credentials, the client authenticated by `ClientCredential`.
        case clientCredentials(ClientCredential)
        /// `clientAssertion` as the authorization grant (RFC 7523 §2.1), the client
        /// authenticated by `ClientCredential` too when given.
        case jwtBearer(ClientCredential)
    }

    /// The grant and client authentication (default: the client assertion).
    public var kind: Kind = .clientAssertion
    /// Other secrets to scrub from whatever the identity provider answers (every loaded client
    /// secret: a provider's error text must not carry another client's secret into a log line).
    public var redactions: [String] = []

    /// The token endpoint (`https://`, or `http://` to a loopback address only).
    public var identityProviderURL: String
    public var clientId: String
    public var clientAssertion: String
    public var scope: String?
    /// Extra form fields appended in order after the standard ones.
    public var additionalParameters: [(name: String, value: String)]

    /// For log lines only: which external credential and principal this is for, and the
    /// assertion's `jti`.
    public var externalCredential: String?
    public var principal: String?
    public var assertionID: String?
    /// TLS settings for this request, when the identity provider wants a client certificate.
    public var tlsConfiguration: TLSConfiguration?

    public init(
        identityProviderURL: String,
        clientId: String,
        clientAssertion: String,
        scope: String? = nil,
        additionalParameters: [(name: String, value: String)] = [],
        externalCredential: String? = nil,
        principal: String? = nil,
        assertionID: String? = nil,
        tlsConfiguration: TLSConfiguration? = nil
    ) {
        self.tlsConfiguration = tlsConfiguration
        self.identityProviderURL = identityProviderURL
        self.clientId = clientId
        self.clientAssertion = clientAssertion
        self.scope = scope
        self.additionalParameters = additionalParameters
        self.externalCredential = externalCredential
        self.principal = principal
        self.assertionID = assertionID
    }

    /// A request of another ``Kind``; for ``Kind/clientCredentials(_:)`` the assertion is empty.
    public init(
        kind: Kind, identityProviderURL: String, clientId: String, assertion: String = "", scope: String? = nil,
        externalCredential: String? = nil, principal: String? = nil, assertionID: String? = nil,
        tlsConfiguration: TLSConfiguration? = nil
    ) {
        self.init(
            identityProviderURL: identityProviderURL, clientId: clientId, clientAssertion: assertion, scope: scope,
            externalCredential: externalCredential, principal: principal, assertionID: assertionID,
            tlsConfiguration: tlsConfiguration)
        self.kind = kind
    }

    /// The form body, every value form-urlencoded. A secret. For the client assertion:
    /// `grant_type=client_credentials&client_id=…&client_assertion_type=…&client_assertion=…
    /// [&scope=…][&extra…]`; for the others `grant_type=…` (and `assertion=…` for the JWT bearer
    /// grant), then the client's fields (`client_id` and `client_secret` for `post`, `client_id`
    /// for the TLS certificate), scope and extras.
    public var formBody: String {
        var pairs: [(name: String, value: String)]
        switch kind {
        case .clientAssertion:
            pairs = [
                ("grant_type", "client_credentials"),
                ("client_id", clientId),
                ("client_assertion_type", Self.assertionType),
                ("client_assertion", clientAssertion),
            ]
        case .clientCredentials(let credential):
            pairs = [("grant_type", "client_credentials")] + fields(of: credential)
        case .jwtBearer(let credential):
            pairs = [("grant_type", Self.jwtBearerGrantType), ("assertion", clientAssertion)] + fields(of: credential)
        }
        if let scope { pairs.append(("scope", scope)) }
        pairs.append(contentsOf: additionalParameters)
        return FormURLEncoding.encode(pairs)
    }

    private func fields(of credential: ClientCredential) -> [(name: String, value: String)] {
        switch credential {
        case .basic, .none: []
        case .post(let secret): [("client_id", clientId), ("client_secret", secret.value)]
        case .tlsCertificate: [("client_id", clientId)]
        }
    }

    /// `Basic base64(urlencode(client_id):urlencode(secret))` for client authentication `basic`
    /// (RFC 6749 §2.3.1), else nil. A secret.
    public var authorizationHeader: String? {
        let credential: ClientCredential
        switch kind {
        case .clientAssertion: return nil
        case .clientCredentials(let c), .jwtBearer(let c): credential = c
        }
        guard case .basic(let secret) = credential else { return nil }
        let pair = FormURLEncoding.encode(clientId) + ":" + FormURLEncoding.encode(secret.value)
        return "Basic " + Data(pair.utf8).base64EncodedString()
    }

    /// Everything in this request that must never reach a log line or an error: the assertion
    /// and its parts, the client secret and the Basic credentials.
    var secrets: [String] {
        var list: [String] = []
        if !clientAssertion.isEmpty {
            list = [clientAssertion] + clientAssertion.split(separator: ".").dropFirst().map(String.init)
        }
        switch kind {
        case .clientCredentials(.basic(let secret)), .clientCredentials(.post(let secret)),
            .jwtBearer(.basic(let secret)), .jwtBearer(.post(let secret)):
            list += [secret.value, FormURLEncoding.encode(secret.value)]
        default: break
        }
        if let header = authorizationHeader { list.append(String(header.dropFirst("Basic ".count))) }
        for other in redactions { list += [other, FormURLEncoding.encode(other)] }
        return list
    }
}

extension TokenRequest: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        "TokenRequest(url: \(identityProviderURL), client_id: \(clientId), scope: \(scope ?? "-"), client_assertion: <redacted>)"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "identityProviderURL": identityProviderURL, "clientId": clientId,
                "scope": scope as Any, "clientAssertion": "<redacted>",
            ],
            displayStyle: .struct
        )
    }
}
