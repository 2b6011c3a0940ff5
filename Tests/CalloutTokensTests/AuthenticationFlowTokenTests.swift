import CalloutCore
import CalloutDevTools
import Foundation
import Testing

@testable import CalloutTokens

/// The token requests of the client-secret, TLS certificate and JWT bearer forms, client secret
/// loading, and the cache keys of those flows. No I/O beyond temporary files.
@Suite struct AuthenticationFlowTokenTests {
    static let secret = ClientSecret("s3cr:t/+ &=é")

    // MARK: Requests

    @Test func theAssertionRequestIsUnchanged() {
        let request = TokenRequest(
            identityProviderURL: "https://idp/token", clientId: "c", clientAssertion: "a.b.c", scope: "x y")
        #expect(
            request.formBody
                == "grant_type=client_credentials&client_id=c&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c&scope=x+y"
        )
        #expect(request.authorizationHeader == nil)
    }

    @Test func basicEncodesIdAndSecretBeforeJoiningThem() throws {
        let request = TokenRequest(
            kind: .clientCredentials(.basic(Self.secret)), identityProviderURL: "https://idp/token",
            clientId: "report:ing client", scope: "read")
        #expect(request.formBody == "grant_type=client_credentials&scope=read")
        let header = try #require(request.authorizationHeader)
        #expect(header.hasPrefix("Basic "))
        let decoded = String(decoding: Data(base64Encoded: String(header.dropFirst(6)))!, as: UTF8.self)
        // RFC 6749 §2.3.1: application/x-www-form-urlencoded, then joined with ':'.
        #expect(decoded == "report%3Aing+client:s3cr%3At%2F%2B+%26%3D%C3%A9")
        #expect(request.secrets.contains(Self.secret.value))
        #expect(request.secrets.contains(String(header.dropFirst(6))))
    }

    @Test func postPutsTheSecretInTheBody() {
        let request = TokenRequest(
            kind: .clientCredentials(.post(Self.secret)), identityProviderURL: "https://idp/token", clientId: "rep")
        #expect(
            request.formBody == "grant_type=client_credentials&client_id=rep&client_secret=s3cr%3At%2F%2B+%26%3D%C3%A9")
        #expect(request.authorizationHeader == nil)
        #expect(!"\(request)".contains("s3cr"))
        #expect(!String(reflecting: request).contains("s3cr"))
    }

    @Test func tlsClientAuthSendsTheClientIdOnly() {
        let request = TokenRequest(
            kind: .clientCredentials(.tlsCertificate), identityProviderURL: "https://idp/token", clientId: "rep",
            scope: "a")
        #expect(request.formBody == "grant_type=client_credentials&client_id=rep&scope=a")
    }

    @Test func jwtBearerSendsTheAssertionAsTheGrant() {
        let bare = TokenRequest(
            kind: .jwtBearer(.none), identityProviderURL: "https://idp/token", clientId: "app", assertion: "h.p.s")
        #expect(bare.formBody == "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=h.p.s")
        let post = TokenRequest(
            kind: .jwtBearer(.post(ClientSecret("pw"))), identityProviderURL: "https://idp/token", clientId: "app",
            assertion: "h.p.s")
        #expect(post.formBody.hasSuffix("&assertion=h.p.s&client_id=app&client_secret=pw"))
        #expect(bare.secrets.contains("h.p.s"))
    }

    @Test func secretDescriptionsAreRedacted() {
        #expect("\(Self.secret)" == "ClientSecret(<redacted>)")
        #expect(!String(reflecting: Self.secret).contains("s3cr"))
        #expect(Self.secret.fingerprint.count == 32)
        #expect(!Self.secret.fingerprint.contains(Self.secret.value))
        #expect(ClientSecret("a").fingerprint != ClientSecret("b").fingerprint)
    }

    // MARK: Loading secrets

    static func config(_ source: String) throws -> ProxyConfig {
        try ConfigLoader.load(
            text: """
                [[external_credential]]
                name = "Reporting_API"
                authentication_flow = "client_credentials_client_secret"
                client_authentication = "post"
                identity_provider_url = "https://idp.example/oauth2/token"

                  [[external_credential.principal]]
                  name = "Reporting"
                  sequence_number = 1
                  client_id = "reporting-client"
                  permission_sets = ["Reporting"]
                  \(source)
                """, file: "t.conf", baseDirectory: FileManager.default.temporaryDirectory.path)
    }

    func loadIssues(_ config: ProxyConfig, environment: [String: String] = [:]) -> [String] {
        do {
            _ = try CredentialMaterials.load(config, environment: environment)
            return []
        } catch {
            return error.issues.map(\.description)
        }
    }

    @Test func anEnvironmentSecretIsReadAndProblemsNameTheVariableOnly() throws {
        let config = try Self.config(#"client_secret_env = "REPORTING_CLIENT_SECRET""#)
        let materials = try CredentialMaterials.load(config, environment: ["REPORTING_CLIENT_SECRET": "top-secret"])
        #expect(materials.clientSecret(credential: "reporting_api", principal: "REPORTING")?.value == "top-secret")
        #expect(
            loadIssues(config) == [
                "t.conf:12: external_credential[0].principal[0].client_secret_env: environment variable REPORTING_CLIENT_SECRET is not set"
            ])
        #expect(
            loadIssues(config, environment: ["REPORTING_CLIENT_SECRET": ""]) == [
                "t.conf:12: external_credential[0].principal[0].client_secret_env: environment variable REPORTING_CLIENT_SECRET is empty"
            ])
    }

    @Test func aFileSecretDropsOneLineBreakAndItsProblemsNameTheFile() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("reporting").path
        try "file-secret\n".write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        let config = try Self.config("client_secret_file = \"\(path)\"")
        let materials = try CredentialMaterials.load(config)
        #expect(materials.clientSecret(credential: "Reporting_API", principal: "Reporting")?.value == "file-secret")
        #expect(KeyFilePermissions.warnings(config).isEmpty)

        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        #expect(
            KeyFilePermissions.warnings(config).map(\.description) == [
                "t.conf:12: external_credential[0].principal[0].client_secret_file: '\(path)' is readable by group and others (mode 0644); restrict it with chmod 600"
            ])

        try "".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(
            loadIssues(config) == [
                "t.conf:12: external_credential[0].principal[0].client_secret_file: '\(path)' is empty"
            ])
        try "two\nlines\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(loadIssues(config).first?.contains("holds more than one line") == true)
        #expect(loadIssues(config).first?.contains("two") == false)
        try FileManager.default.removeItem(atPath: path)
        #expect(
            loadIssues(config) == [
                "t.conf:12: external_credential[0].principal[0].client_secret_file: cannot read '\(path)': no such file"
            ])
    }

    // MARK: Cache keys

    func key(_ credential: ExternalCredentialConfig, secret: String? = "one") -> TokenCacheKey {
        let materials = CredentialMaterials(
            clientSecrets: secret.map { [(credential.name, credential.principals[0].name, ClientSecret($0))] } ?? [])
        let preparation = TokenPreparation(materials: { materials }, settings: { ProxySettings() })
        let demand = TokenDemand(
            credential: credential, principal: credential.principals[0], identity: CallerIdentity(),
            namedCredential: nil)
        return try! preparation.cacheKey(for: demand)
    }

    func credential(_ flow: AuthenticationFlow, _ method: ClientAuthentication, issuer: Bool = false)
        -> ExternalCredentialConfig
    {
        var credential = ExternalCredentialConfig(
            name: "Reporting_API", identityProviderURL: URL(string: "https://idp.example/token")!,
            signingCertificate: flow.signsJWT ? "Signing" : "",
            principals: [
                PrincipalConfig(
                    name: "Reporting", sequenceNumber: 1, clientId: "reporting-client", permissionSets: ["R"],
                    clientSecret: ClientSecretSource(.environment("X"), keyPath: "k"))
            ])
        credential.flow = flow
        credential.clientAuthentication = method
        if issuer {
            credential.identityProviderIssuer = URL(string: "https://idp.example/token")!
        }
        return credential
    }

    @Test func flowsAndSecretsSplitTheKeyWhichNeverHoldsTheSecret() {
        let basic = key(credential(.clientCredentialsClientSecret, .basic))
        let keys = [
            key(credential(.clientCredentialsJWTAssertion, .privateKeyJWT)),
            basic,
            key(credential(.clientCredentialsClientSecret, .post)),
            key(credential(.clientCredentialsClientSecret, .basic), secret: "two"),
            key(credential(.clientCredentialsClientSecret, .tlsClientAuth)),
            key(credential(.jwtBearer, .none)),
            key(credential(.clientCredentialsClientSecret, .basic, issuer: true)),
        ]
        #expect(Set(keys).count == keys.count)
        #expect(key(credential(.clientCredentialsClientSecret, .basic)) == basic)
        #expect(basic.issuer.flow == "client_credentials_client_secret+basic")
        #expect(!"\(basic.issuer)".contains("one"))
        #expect(keys[0].issuer.flow == "client_credentials_jwt_assertion")
    }
}
