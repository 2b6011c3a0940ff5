import NIOSSL

/// One client-credentials token request with a JWT client assertion (RFC 7523 §2.2).
///
/// `clientAssertion` is a secret: the description and mirror redact it.
public struct TokenRequest: Sendable {
    public static let assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    /// Form fields the client sets itself; `additionalParameters` may not repeat them.
    public static let reservedParameters: Set<String> = [
        "grant_type", "client_id", "client_assertion_type", "client_assertion", "scope",
    ]

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

    /// The form body: `grant_type=client_credentials&client_id=…&client_assertion_type=…&
    /// client_assertion=…[&scope=…][&extra…]`, every value form-urlencoded. A secret.
    public var formBody: String {
        var pairs: [(name: String, value: String)] = [
            ("grant_type", "client_credentials"),
            ("client_id", clientId),
            ("client_assertion_type", Self.assertionType),
            ("client_assertion", clientAssertion),
        ]
        if let scope { pairs.append(("scope", scope)) }
        pairs.append(contentsOf: additionalParameters)
        return FormURLEncoding.encode(pairs)
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
