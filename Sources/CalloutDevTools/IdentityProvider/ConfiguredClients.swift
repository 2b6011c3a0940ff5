import CalloutCore
import CalloutTokens
import NIOSSL

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The clients a development identity provider knows: for each client id, the public key its
/// assertions must verify with, the one signing algorithm allowed, and the audience expected.
/// Built from a configuration (every external credential × principal) or from a plain list.
/// `verifier(...)` checks assertions with `AssertionVerifier`; its rejections never quote the
/// assertion.
public struct ConfiguredClients: Sendable {
    /// One client registration.
    public struct Client: Sendable {
        public let clientId: String
        public let key: VerificationKey
        public let algorithm: SigningAlgorithm
        /// The `aud` the assertion must contain; `nil`: the provider's own token endpoint URL.
        public let audience: String?
        /// Longest accepted `exp` - `iat`.
        public let maxLifetimeSeconds: Int64
        /// The external credential it came from, when built from a configuration.
        public let externalCredential: String?

        public init(
            clientId: String, key: VerificationKey, algorithm: SigningAlgorithm, audience: String?,
            maxLifetimeSeconds: Int64 = 300, externalCredential: String? = nil
        ) {
            self.clientId = clientId
            self.key = key
            self.algorithm = algorithm
            self.audience = audience
            self.maxLifetimeSeconds = maxLifetimeSeconds
            self.externalCredential = externalCredential
        }
    }

    /// Why a configuration could not be turned into clients.
    public enum BuildError: Error, Sendable, Equatable, CustomStringConvertible {
        /// The external credential's signing certificate is not among the loaded materials.
        case missingSigningMaterial(externalCredential: String, certificate: String)

        public var description: String {
            switch self {
            case .missingSigningMaterial(let credential, let certificate):
                "external credential '\(credential)': signing certificate '\(certificate)' is not loaded"
            }
        }
    }

    /// Every registration, in configuration order. A client id may appear more than once (the
    /// same principal under several external credentials); an assertion passes if it verifies
    /// against any of its registrations.
    public let clients: [Client]
    /// Clients of the client-secret, TLS certificate and JWT bearer flows, by client id, for
    /// `DevelopmentIdentityProvider.start(registrations:)`.
    public let registrations: [String: DevelopmentIdentityProvider.ClientRegistration]

    public init(clients: [Client], registrations: [String: DevelopmentIdentityProvider.ClientRegistration] = [:]) {
        self.clients = clients
        self.registrations = registrations
    }

    /// Registers `(clientId, key, algorithm, audience)`; a `nil` audience means the provider's
    /// own token endpoint URL.
    public init(_ entries: [(clientId: String, key: VerificationKey, algorithm: SigningAlgorithm, audience: String?)]) {
        self.clients = entries.map {
            Client(clientId: $0.clientId, key: $0.key, algorithm: $0.algorithm, audience: $0.audience)
        }
        self.registrations = [:]
    }

    /// One registration per external credential × principal: the public key of the credential's
    /// signing certificate, its signing algorithm, and as audience its `identity_provider_url`
    /// (or a constant `jwt_claims.aud`). The accepted lifetime is the larger of 300 seconds and
    /// the credential's `jwt_expiration_seconds`.
    public init(config: ProxyConfig, materials: CredentialMaterials) throws(BuildError) {
        var clients: [Client] = []
        var registrations: [String: DevelopmentIdentityProvider.ClientRegistration] = [:]
        for credential in config.externalCredentials {
            if credential.flow == .clientCredentialsClientSecret {
                for principal in credential.principals {
                    registrations[principal.clientId] = .init(
                        grant: .clientCredentials,
                        authentication: Self.authentication(credential, principal, materials))
                }
                continue
            }
            guard let material = materials.signingMaterial(credential.signingCertificate) else {
                throw .missingSigningMaterial(
                    externalCredential: credential.name, certificate: credential.signingCertificate)
            }
            let audience = Self.audience(of: credential)
            let lifetime = Int64(max(300, credential.jwtExpirationSeconds))
            if credential.flow == .jwtBearer {
                for principal in credential.principals {
                    registrations[principal.clientId] = .init(
                        grant: .jwtBearer(
                            key: material.key.verificationKey, algorithm: credential.signingAlgorithm,
                            audience: audience, maxLifetimeSeconds: lifetime),
                        authentication: Self.authentication(credential, principal, materials))
                }
                continue
            }
            for principal in credential.principals {
                clients.append(
                    Client(
                        clientId: principal.clientId, key: material.key.verificationKey,
                        algorithm: credential.signingAlgorithm, audience: audience,
                        maxLifetimeSeconds: lifetime, externalCredential: credential.name))
            }
        }
        self.clients = clients
        self.registrations = registrations
    }

    /// How a principal of the other flows authenticates: its secret, or its TLS certificate.
    static func authentication(
        _ credential: ExternalCredentialConfig, _ principal: PrincipalConfig, _ materials: CredentialMaterials
    ) -> DevelopmentIdentityProvider.ClientRegistration.Authentication {
        let secret = materials.clientSecret(credential: credential.name, principal: principal.name)?.value ?? ""
        switch credential.clientAuthentication {
        case .basic: return .basic(secret: secret)
        case .post: return .post(secret: secret)
        case .tlsClientAuth:
            let der = credential.identityProviderClientCertificate.flatMap { materials.tlsIdentity($0) }?
                .certificateChain.first.flatMap { try? $0.toDERBytes() }
            return .tlsCertificate(der: der ?? [])
        case .none, .privateKeyJWT: return .none
        }
    }

    /// The registered client ids, for `DevelopmentIdentityProvider.start(clients:)`.
    public var clientIds: Set<String> { Set(clients.map(\.clientId)) }

    /// A verifier for `DevelopmentIdentityProvider.start(verifier:)`: signature with the
    /// registered key, only the registered algorithm, `aud`, `iss` = `sub` = client id, `exp`,
    /// `nbf`, `iat`, lifetime, and `jti` unused (recorded in `replayCache`).
    ///
    /// - Parameter now: Unix seconds.
    public func verifier(
        replayCache: JTIReplayCache = JTIReplayCache(),
        now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }
    ) -> DevelopmentIdentityProvider.VerifyAssertion {
        let byId = Dictionary(grouping: clients, by: \.clientId)
        return { clientId, assertion, providerAudience in
            guard let candidates = byId[clientId] else {
                return .failure(.init("unknown client"))
            }
            let time = now()
            var firstError: AssertionVerificationError?
            for client in candidates {
                let verifier = AssertionVerifier(
                    key: client.key, expectedAudience: client.audience ?? providerAudience,
                    expectedClientId: clientId, allowedAlgorithms: [client.algorithm],
                    maxLifetimeSeconds: client.maxLifetimeSeconds, replayCache: replayCache)
                do {
                    _ = try verifier.verify(assertion, now: time)
                    return .success(())
                } catch let error as AssertionVerificationError {
                    firstError = firstError ?? error
                } catch {
                    firstError = firstError ?? .malformed("cannot be verified")
                }
            }
            return .failure(.init(firstError?.description ?? "the assertion does not verify"))
        }
    }

    /// A constant `jwt_claims.aud`, else the identity provider URL; nil (the provider's own token
    /// endpoint) when the endpoint is discovered from an issuer.
    static func audience(of credential: ExternalCredentialConfig) -> String? {
        if let claim = credential.jwtClaims.last(where: { $0.name == "aud" })?.value, claim.isConstant,
            let text = try? claim.evaluate(in: FormulaContext())
        {
            return text
        }
        if credential.identityProviderIssuer != nil { return nil }
        return credential.identityProviderURL.absoluteString
    }
}
