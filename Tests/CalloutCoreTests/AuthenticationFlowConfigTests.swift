import Foundation
import Testing

@testable import CalloutCore

/// `authentication_flow`, `client_authentication`, client secrets and `identity_provider_issuer`:
/// what loads, and what `check` says (with key path and line) about bad combinations.
@Suite struct AuthenticationFlowConfigTests {
    /// A client-secret credential; `credential` and `principal` add keys to each table.
    static func secretConfig(credential: String = "", principal: String = "") -> String {
        """
        [[certificate]]
        name = "Signing"
        private_key_file = "keys/signing.key"

        [[external_credential]]
        name = "Reporting_API"
        authentication_flow = "client_credentials_client_secret"
        identity_provider_url = "https://idp.example/oauth2/token"
        \(credential)

          [[external_credential.principal]]
          name = "Reporting"
          sequence_number = 1
          client_id = "reporting-client"
          permission_sets = ["Reporting"]
          \(principal)

        [[named_credential]]
        name = "Reports"
        url = "https://api.example/v1"
        external_credential = "Reporting_API"
        """
    }

    static func messages(_ text: String) -> [String] { issues(text).map(\.description) }

    @Test func aClientSecretCredentialLoadsWithBasicByDefault() throws {
        let config = try ConfigLoader.load(
            text: Self.secretConfig(principal: #"client_secret_env = "REPORTING_CLIENT_SECRET""#), file: "t.conf",
            baseDirectory: "/etc/proxy")
        let credential = config.externalCredentials[0]
        #expect(credential.flow == .clientCredentialsClientSecret)
        #expect(credential.clientAuthentication == .basic)
        #expect(credential.signingCertificate == "")
        #expect(credential.principals[0].clientSecret?.kind == .environment("REPORTING_CLIENT_SECRET"))
        #expect(
            credential.principals[0].clientSecret?.keyPath == "external_credential[0].principal[0].client_secret_env")

        let post = try ConfigLoader.load(
            text: Self.secretConfig(
                credential: #"client_authentication = "post""#, principal: #"client_secret_file = "secrets/reporting""#),
            file: "t.conf", baseDirectory: "/etc/proxy")
        #expect(post.externalCredentials[0].clientAuthentication == .post)
        #expect(post.externalCredentials[0].principals[0].clientSecret?.kind == .file("/etc/proxy/secrets/reporting"))
    }

    @Test func theAssertionFlowIsUnchanged() throws {
        let config = try ConfigLoader.load(text: validConfig)
        #expect(config.externalCredentials[0].flow == .clientCredentialsJWTAssertion)
        #expect(config.externalCredentials[0].clientAuthentication == .privateKeyJWT)
        #expect(config.externalCredentials[0].identityProviderIssuer == nil)
    }

    @Test func aSecretInTheFileIsRefusedWithoutQuotingIt() {
        let found = Self.messages(Self.secretConfig(principal: #"client_secret = "s3cr3t-value""#))
        #expect(
            found == [
                #"test.conf:16: external_credential[0].principal[0].client_secret: a secret is never written in the configuration file: name an environment variable with client_secret_env = "VAR" or a file with client_secret_file = "path""#
            ])
        #expect(!found.joined().contains("s3cr3t-value"))
        // At the credential level too.
        let upper = Self.messages(
            Self.secretConfig(credential: #"client_secret = "s3cr3t-value""#, principal: #"client_secret_env = "X""#))
        #expect(upper.count == 1)
        #expect(upper[0].contains("external_credential[0].client_secret: a secret is never written"))
    }

    @Test func aMissingSecretSourceNamesBothKeys() {
        #expect(
            Self.messages(Self.secretConfig()) == [
                #"test.conf:11: external_credential[0].principal[0]: needs client_secret_env or client_secret_file: external credential uses client_authentication "basic""#
            ])
        #expect(
            Self.messages(
                Self.secretConfig(principal: "client_secret_env = \"A\"\nclient_secret_file = \"b\"")
            ).contains {
                $0.contains("principal[0].client_secret_file: give client_secret_env or client_secret_file, not both")
            })
        #expect(
            Self.messages(Self.secretConfig(principal: #"client_secret_env = "not a name""#)).contains {
                $0.contains("client_secret_env: must be the name of an environment variable")
            })
    }

    @Test func signingKeysAreRefusedForTheClientSecretFlow() {
        let found = Self.messages(
            Self.secretConfig(
                credential: "signing_certificate = \"Signing\"\nsigning_algorithm = \"RS512\"",
                principal: #"client_secret_env = "X""#))
        #expect(found.count == 2)
        #expect(
            found[0]
                == #"test.conf:9: external_credential[0].signing_certificate: is not used with authentication_flow "client_credentials_client_secret", which signs no JWT; remove it (or use "client_credentials_jwt_assertion" or "jwt_bearer")"#
        )
        #expect(found[1].contains("signing_algorithm: is not used with"))
    }

    @Test func tlsClientAuthNeedsAClientCertificateAndNoSecret() {
        #expect(
            Self.messages(Self.secretConfig(credential: #"client_authentication = "tls_client_auth""#)) == [
                #"test.conf:9: external_credential[0].client_authentication: "tls_client_auth" needs identity_provider_client_certificate: the [[certificate]] presented to the identity provider"#
            ])
        let found = Self.messages(
            Self.secretConfig(
                credential:
                    "client_authentication = \"tls_client_auth\"\nidentity_provider_client_certificate = \"Signing\"",
                principal: #"client_secret_env = "X""#))
        #expect(
            found == [
                #"test.conf:17: external_credential[0].principal[0].client_secret_env: is used only with client_authentication "basic" or "post"; this external credential authenticates with "tls_client_auth""#
            ])
    }

    @Test func clientAuthenticationValuesDependOnTheFlow() {
        #expect(
            Self.messages(
                Self.secretConfig(
                    credential: #"client_authentication = "none""#, principal: #"client_secret_env = "X""#))
                == [
                    #"test.conf:9: external_credential[0].client_authentication: 'none' is not supported with authentication_flow "client_credentials_client_secret"; use one of "basic" (the default), "post", "tls_client_auth""#
                ])
        let assertion = validConfig.replacingOccurrences(
            of: "signing_certificate = \"Acme_Signing\"",
            with: "signing_certificate = \"Acme_Signing\"\nclient_authentication = \"basic\"")
        #expect(
            Self.messages(assertion).contains {
                $0.contains(
                    #"client_authentication: is not used with authentication_flow "client_credentials_jwt_assertion""#)
            })
        let unknown = validConfig.replacingOccurrences(
            of: "signing_certificate = \"Acme_Signing\"",
            with: "signing_certificate = \"Acme_Signing\"\nauthentication_flow = \"password\"")
        #expect(
            Self.messages(unknown).contains {
                $0.contains(
                    #"authentication_flow: 'password' is not supported; use one of "client_credentials_jwt_assertion", "client_credentials_client_secret", "jwt_bearer""#
                )
            })
    }

    @Test func jwtBearerSignsAndDefaultsToNoClientAuthentication() throws {
        let text = validConfig.replacingOccurrences(
            of: "signing_certificate = \"Acme_Signing\"",
            with: "signing_certificate = \"Acme_Signing\"\nauthentication_flow = \"jwt_bearer\"")
        let config = try ConfigLoader.load(text: text)
        #expect(config.externalCredentials[0].flow == .jwtBearer)
        #expect(config.externalCredentials[0].clientAuthentication == ClientAuthentication.none)
        // Without its signing certificate it is incomplete.
        let unsigned = text.replacingOccurrences(of: "signing_certificate = \"Acme_Signing\"\n", with: "")
        #expect(
            Self.messages(unsigned).contains { $0.contains("external_credential[0].signing_certificate: is required") })
        // With basic, each principal needs its secret.
        let basic = text.replacingOccurrences(
            of: "authentication_flow = \"jwt_bearer\"",
            with: "authentication_flow = \"jwt_bearer\"\nclient_authentication = \"basic\"")
        #expect(Self.messages(basic).contains { $0.contains("needs client_secret_env or client_secret_file") })
    }

    @Test func issuerReplacesTheURLButNotBoth() throws {
        let issuer = Self.secretConfig(principal: #"client_secret_env = "X""#)
            .replacingOccurrences(
                of: #"identity_provider_url = "https://idp.example/oauth2/token""#,
                with: #"identity_provider_issuer = "https://idp.example""#)
        let config = try ConfigLoader.load(text: issuer)
        #expect(config.externalCredentials[0].identityProviderIssuer?.absoluteString == "https://idp.example")
        #expect(config.externalCredentials[0].tokenEndpointDescription == "issuer https://idp.example")

        #expect(
            Self.messages(
                Self.secretConfig(
                    credential: #"identity_provider_issuer = "https://idp.example""#,
                    principal: #"client_secret_env = "X""#))
                == [
                    "test.conf:9: external_credential[0].identity_provider_issuer: give identity_provider_url (the token endpoint) or identity_provider_issuer (to discover it), not both"
                ])
        let neither = Self.secretConfig(principal: #"client_secret_env = "X""#)
            .replacingOccurrences(of: #"identity_provider_url = "https://idp.example/oauth2/token""#, with: "")
        #expect(
            Self.messages(neither).contains {
                $0.contains(
                    "external_credential[0].identity_provider_url: is required (or identity_provider_issuer, to discover the token endpoint from the issuer's metadata)"
                )
            })
        let plain = issuer.replacingOccurrences(of: "https://idp.example", with: "http://idp.example")
        #expect(Self.messages(plain).contains { $0.contains("identity_provider_issuer: must use https://") })
        let query = issuer.replacingOccurrences(of: "https://idp.example", with: "https://idp.example/?x=1")
        #expect(Self.messages(query).contains { $0.contains("identity_provider_issuer: must not have a query string") })
    }
}
