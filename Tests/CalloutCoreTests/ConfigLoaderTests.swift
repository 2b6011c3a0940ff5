import Testing

@testable import CalloutCore

/// A small valid configuration the rule tests start from.
let validConfig = """
    [proxy]
    listen = "127.0.0.1:8080"

    [[certificate]]
    name = "Acme_Signing"
    private_key_file = "keys/acme.key"

    [[external_credential]]
    name = "Acme_API"
    identity_provider_url = "https://idp.acme.example/oauth2/token"
    signing_certificate = "Acme_Signing"

      [[external_credential.principal]]
      name = "Reader"
      sequence_number = 2
      client_id = "acme-reader"
      permission_sets = ["Readers"]

      [[external_credential.principal]]
      name = "Admin"
      sequence_number = 1
      client_id = "acme-admin"
      permission_sets = ["Admins"]

    [[named_credential]]
    name = "Acme"
    url = "https://api.acme.example/v2"
    external_credential = "Acme_API"
    """

func issues(_ text: String) -> [ConfigIssue] {
    do {
        _ = try ConfigLoader.load(text: text, file: "test.conf")
        return []
    } catch {
        return error.issues
    }
}

/// Replaces the first occurrence of `old` in the valid configuration.
func variant(_ old: String, _ new: String) -> String {
    precondition(validConfig.contains(old), "fixture does not contain \(old)")
    return validConfig.replacingOccurrences(of: old, with: new, options: [], range: validConfig.range(of: old))
}

@Suite struct ConfigLoaderTests {
    @Test func validConfigLoads() throws {
        let config = try ConfigLoader.load(text: validConfig)
        #expect(config.proxy.listen == HostPort(host: "127.0.0.1", port: 8080))
        #expect(config.externalCredentials.count == 1)
        let credential = try #require(config.externalCredential("acme_api"))
        // Principals are kept in sequence order, whatever the file order.
        #expect(credential.principals.map(\.name) == ["Admin", "Reader"])
        #expect(credential.signingAlgorithm == .rs256)
        #expect(credential.jwtExpirationSeconds == 120)
        #expect(config.namedCredential("ACME")?.url.absoluteString == "https://api.acme.example/v2")
        #expect(config.namedCredential("Acme")?.generateAuthorizationHeader == true)
    }

    @Test func defaultsAreDocumentedValues() {
        let s = ProxySettings()
        #expect(s.requestTimeoutSeconds == 10)
        #expect(s.retryBodyBufferBytes == 1 << 20)
        #expect(s.maxCachedTokens == 10_000)
        #expect(s.tokenRefreshAheadRatio == 0.8)
        #expect(s.tokenExpirySkewSeconds == 10)
        #expect(s.shutdownGraceSeconds == 15)
        #expect(s.maxFormulaValueLength == 1300)
    }

    @Test func syntaxErrorReportsItsLine() {
        let found = issues("[proxy]\nlisten = \"127.0.0.1:8080\"\nrequest_timeout_seconds = = 3\n")
        #expect(found.count == 1)
        #expect(found.first?.line == 3)
        #expect(found.first?.description.hasPrefix("test.conf:3: TOML syntax error") == true)
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let text: String
        let keyPath: String
        let fragment: String
        var testDescription: String { "\(keyPath): \(fragment)" }
    }

    static let ruleCases: [Case] = [
        // Names
        Case(
            text: variant("name = \"Acme_API\"", "name = \"1Acme\""), keyPath: "external_credential[0].name",
            fragment: "begin with a letter"),
        Case(
            text: variant("name = \"Acme_API\"", "name = \"Acme API\""), keyPath: "external_credential[0].name",
            fragment: "spaces"),
        Case(
            text: variant("name = \"Acme_API\"", "name = \"Acme_\""), keyPath: "external_credential[0].name",
            fragment: "end with an underscore"),
        Case(
            text: variant("name = \"Acme_API\"", "name = \"Acme__API\""), keyPath: "external_credential[0].name",
            fragment: "two consecutive underscores"),
        Case(
            text: variant("name = \"Acme_API\"", "name = \"Acme-API\""), keyPath: "external_credential[0].name",
            fragment: "letters, digits and underscores"),
        Case(
            text: variant("name = \"Acme_API\"", "name = \"A\(String(repeating: "b", count: 80))\""),
            keyPath: "external_credential[0].name", fragment: "at most 80"),
        Case(
            text: variant(
                "name = \"Acme_API\"", "name = \"Acme_API\"\nlabel = \"\(String(repeating: "L", count: 81))\""),
            keyPath: "external_credential[0].label", fragment: "at most 80"),
        Case(
            text: variant("name = \"Reader\"", "name = \"Admin\""), keyPath: "external_credential[0].principal[1].name",
            fragment: "already named 'Admin'"),
        Case(
            text: validConfig + "\n[[certificate]]\nname = \"acme_signing\"\nprivate_key_file = \"x\"\n",
            keyPath: "certificate[1].name", fragment: "already named"),
        Case(
            text: variant("name = \"Acme\"", "name = \"\""), keyPath: "named_credential[0].name",
            fragment: "must not be empty"),
        // URLs
        Case(
            text: variant("https://idp.acme.example/oauth2/token", "http://idp.acme.example/token"),
            keyPath: "external_credential[0].identity_provider_url", fragment: "https://"),
        Case(
            text: variant("https://api.acme.example/v2", "https://api.acme.example/v2?key=1"),
            keyPath: "named_credential[0].url", fragment: "query string"),
        Case(
            text: variant("https://api.acme.example/v2", "https://api.acme.example/v2#frag"),
            keyPath: "named_credential[0].url", fragment: "fragment"),
        Case(
            text: variant("https://api.acme.example/v2", "api.acme.example/v2"), keyPath: "named_credential[0].url",
            fragment: "not an absolute URL"),
        Case(
            text: variant("https://api.acme.example/v2", "https://user:pw@api.acme.example/v2"),
            keyPath: "named_credential[0].url", fragment: "credentials"),
        // Algorithm, status codes, expiration
        Case(
            text: variant(
                "signing_certificate = \"Acme_Signing\"",
                "signing_certificate = \"Acme_Signing\"\nsigning_algorithm = \"HS256\""),
            keyPath: "external_credential[0].signing_algorithm", fragment: "RS256"),
        Case(
            text: variant(
                "signing_certificate = \"Acme_Signing\"",
                "signing_certificate = \"Acme_Signing\"\nadditional_refresh_status_codes = [500]"),
            keyPath: "external_credential[0].additional_refresh_status_codes[0]", fragment: "5xx are server faults"),
        Case(
            text: variant(
                "signing_certificate = \"Acme_Signing\"",
                "signing_certificate = \"Acme_Signing\"\nadditional_refresh_status_codes = [403, 403]"),
            keyPath: "external_credential[0].additional_refresh_status_codes[1]", fragment: "listed twice"),
        Case(
            text: variant(
                "signing_certificate = \"Acme_Signing\"",
                "signing_certificate = \"Acme_Signing\"\nadditional_refresh_status_codes = [200]"),
            keyPath: "external_credential[0].additional_refresh_status_codes[0]", fragment: "400-499 or 600-999"),
        Case(
            text: variant(
                "signing_certificate = \"Acme_Signing\"",
                "signing_certificate = \"Acme_Signing\"\nadditional_refresh_status_codes = [\"403\"]"),
            keyPath: "external_credential[0].additional_refresh_status_codes[0]", fragment: "must be an integer"),
        Case(
            text: variant(
                "signing_certificate = \"Acme_Signing\"",
                "signing_certificate = \"Acme_Signing\"\njwt_expiration_seconds = 0"),
            keyPath: "external_credential[0].jwt_expiration_seconds", fragment: "between 1 and 3600"),
        Case(
            text: variant(
                "signing_certificate = \"Acme_Signing\"",
                "signing_certificate = \"Acme_Signing\"\nauthentication_flow = \"password\""),
            keyPath: "external_credential[0].authentication_flow", fragment: "not supported"),
        // Principals
        Case(
            text: variant("sequence_number = 2", "sequence_number = 1"),
            keyPath: "external_credential[0].principal[1].sequence_number",
            fragment: "already used by principal 'Reader'"),
        Case(
            text: variant("sequence_number = 2", "sequence_number = 0"),
            keyPath: "external_credential[0].principal[0].sequence_number", fragment: "positive"),
        Case(
            text: variant("sequence_number = 2\n", ""), keyPath: "external_credential[0].principal[0].sequence_number",
            fragment: "is required"),
        Case(
            text: variant("client_id = \"acme-reader\"", "client_id = \"\""),
            keyPath: "external_credential[0].principal[0].client_id", fragment: "must not be empty"),
        Case(
            text: variant("permission_sets = [\"Readers\"]", "permission_sets = []"),
            keyPath: "external_credential[0].principal[0]", fragment: "no caller could ever use it"),
        // References
        Case(
            text: variant("signing_certificate = \"Acme_Signing\"", "signing_certificate = \"Acme_Signin\""),
            keyPath: "external_credential[0].signing_certificate", fragment: "did you mean 'Acme_Signing'"),
        Case(
            text: variant("external_credential = \"Acme_API\"", "external_credential = \"Nope\""),
            keyPath: "named_credential[0].external_credential", fragment: "no [[external_credential]] is named 'Nope'"),
        Case(
            text: variant(
                "external_credential = \"Acme_API\"",
                "external_credential = \"Acme_API\"\nclient_certificate = \"Missing\""),
            keyPath: "named_credential[0].client_certificate", fragment: "no [[certificate]] is named 'Missing'"),
        // Unknown keys and types
        Case(
            text: variant("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:8080\"\nrequest_timeout_secs = 5"),
            keyPath: "proxy.request_timeout_secs", fragment: "did you mean 'request_timeout_seconds'"),
        Case(
            text: variant("client_id = \"acme-reader\"", "client_id = \"acme-reader\"\nsequence = 3"),
            keyPath: "external_credential[0].principal[0].sequence", fragment: "unknown key"),
        Case(
            text: validConfig + "\n[[named_credentails]]\nname = \"X\"\n", keyPath: "named_credentails",
            fragment: "did you mean 'named_credential'"),
        Case(
            text: variant("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1\""), keyPath: "proxy.listen",
            fragment: "HOST:PORT"),
        Case(
            text: variant("listen = \"127.0.0.1:8080\"", "listen = 8080"), keyPath: "proxy.listen",
            fragment: "must be a string"),
        Case(
            text: variant("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:8080\"\nrequest_timeout_seconds = 121"),
            keyPath: "proxy.request_timeout_seconds", fragment: "between 1 and 120"),
        Case(
            text: variant(
                "listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:8080\"\ntrusted_callers = [\"10.0.0.0/33\"]"),
            keyPath: "proxy.trusted_callers[0]", fragment: "not an address or CIDR"),
        Case(
            text: variant(
                "listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:8080\"\nprofile_header = \"Bad Header\""),
            keyPath: "proxy.profile_header", fragment: "valid HTTP header name"),
        Case(
            text: variant("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:8080\"\nadmin_token_sha256 = \"abc\""),
            keyPath: "proxy.admin_token_sha256", fragment: "64 hexadecimal"),
        // Custom headers
        Case(
            text: validConfig + "\n  [[named_credential.custom_header]]\n  name = \"Host\"\n  value = \"x\"\n",
            keyPath: "named_credential[0].custom_header[0].name", fragment: "managed by the proxy"),
        Case(
            text: validConfig + "\n  [[named_credential.custom_header]]\n  name = \"Bad Name\"\n  value = \"x\"\n",
            keyPath: "named_credential[0].custom_header[0].name", fragment: "not a valid HTTP header name"),
        // Callers
        Case(
            text: validConfig + "\n[[caller]]\nname = \"svc\"\ntoken_sha256 = \"zz\"\npermission_sets = [\"A\"]\n",
            keyPath: "caller[0].token_sha256", fragment: "64 hexadecimal"),
        Case(
            text: validConfig
                + "\n[[caller]]\nname = \"svc\"\ntoken_sha256 = \"\(String(repeating: "a", count: 64))\"\n",
            keyPath: "caller[0]", fragment: "grants nothing"),
        // Required keys
        Case(
            text: variant("url = \"https://api.acme.example/v2\"\n", ""), keyPath: "named_credential[0].url",
            fragment: "is required"),
        Case(
            text: variant("client_id = \"acme-admin\"\n", ""), keyPath: "external_credential[0].principal[1].client_id",
            fragment: "is required"),
    ]

    @Test(arguments: ruleCases)
    func ruleIsEnforced(_ c: Case) {
        let found = issues(c.text)
        let match = found.first { $0.keyPath == c.keyPath && $0.message.contains(c.fragment) }
        #expect(
            match != nil,
            "expected \(c.keyPath): …\(c.fragment)…, got:\n\(found.map(\.description).joined(separator: "\n"))")
        if let match {
            #expect(match.description.contains("\(c.keyPath): "))
            #expect(match.line != nil, "no line for \(c.keyPath)")
        }
    }

    @Test func everyProblemIsReportedAtOnce() {
        let text = variant("name = \"Acme_API\"", "name = \"Bad Name\"")
            .replacingOccurrences(of: "sequence_number = 2", with: "sequence_number = -1")
            .replacingOccurrences(of: "https://api.acme.example/v2", with: "ftp://x")
        let found = issues(text)
        #expect(found.count >= 3)
    }

    @Test func linesPointAtTheOffendingKey() {
        let text = variant("sequence_number = 2", "sequence_number = 0")
        let issue = issues(text).first { $0.keyPath.hasSuffix("sequence_number") }
        let expectedLine = text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex {
            $0.contains("sequence_number = 0")
        }.map { $0 + 1 }
        #expect(issue?.line == expectedLine)
        #expect(
            issue?.description.hasPrefix(
                "test.conf:\(expectedLine ?? 0): external_credential[0].principal[0].sequence_number: ") == true)
    }

    @Test func insecureHTTPNeedsTheEscapeHatch() throws {
        let text = variant("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:8080\"\nallow_insecure_http = true")
            .replacingOccurrences(of: "https://api.acme.example/v2", with: "http://127.0.0.1:9000/v2")
        let config = try ConfigLoader.load(text: text)
        #expect(config.namedCredentials[0].url.scheme == "http")
    }

    @Test func relativePathsResolveAgainstTheConfigFolder() throws {
        let config = try ConfigLoader.load(
            text: validConfig, file: "/etc/callout/proxy.conf", baseDirectory: "/etc/callout")
        #expect(config.certificates[0].privateKeyFile == "/etc/callout/keys/acme.key")
    }

    @Test func refreshStatusIncludes401AndAdditionalCodes() throws {
        let text = variant(
            "signing_certificate = \"Acme_Signing\"",
            "signing_certificate = \"Acme_Signing\"\nadditional_refresh_status_codes = [403, 499]")
        let credential = try ConfigLoader.load(text: text).externalCredentials[0]
        #expect(credential.isRefreshStatus(401))
        #expect(credential.isRefreshStatus(403))
        #expect(credential.isRefreshStatus(499))
        #expect(!credential.isRefreshStatus(404))
        #expect(!credential.isRefreshStatus(500))
    }

    @Test func callerAndInlineUserTable() throws {
        let text =
            validConfig + """

                [[caller]]
                name = "billing_service"
                token_sha256 = "\(String(repeating: "ab", count: 32))"
                permission_sets = ["Billing"]
                profile = "Integration"
                user = { Department = "Finance" }
                """
        let config = try ConfigLoader.load(text: text)
        #expect(config.callers[0].user == ["Department": "Finance"])
        #expect(config.callers[0].tokenSHA256.count == 32)
        #expect(config.callers[0].trustIdentityHeaders == false)
    }

    @Test func missingFileIsAClearError() {
        #expect(throws: ConfigError.self) { try ConfigLoader.load(path: "/nonexistent/proxy.conf") }
        do { _ = try ConfigLoader.load(path: "/nonexistent/proxy.conf") } catch {
            #expect(
                error.description
                    == "/nonexistent/proxy.conf: configuration file not found: looked for /nonexistent/proxy.conf (given with --config)"
            )
        }
    }
}

@Suite struct NameAndAddressRuleTests {
    @Test(arguments: ["Acme", "Acme_API", "a1", "A_b_c"]) func validNames(_ n: String) {
        #expect(NameRules.problem(with: n) == nil)
    }

    @Test(arguments: ["", "_a", "1a", "a_", "a__b", "a b", "a-b", "é"]) func invalidNames(_ n: String) {
        #expect(NameRules.problem(with: n) != nil)
    }

    @Test func cidrMatching() throws {
        let v4 = try #require(CIDR("10.1.0.0/16"))
        #expect(v4.contains("10.1.200.3"))
        #expect(!v4.contains("10.2.0.1"))
        #expect(v4.contains("::ffff:10.1.2.3"))
        let v6 = try #require(CIDR("fd00::/8"))
        #expect(v6.contains("fd12:3456::1"))
        #expect(!v6.contains("fe80::1"))
        #expect(try #require(CIDR("::1/128")).contains("::1"))
        #expect(CIDR("10.0.0.0/33") == nil)
        #expect(CIDR("010.0.0.1") == nil)
        #expect(CIDR("1.2.3.4").map(\.prefixLength) == 32)
    }

    @Test func hostPortParsing() {
        #expect(HostPort(parsing: "127.0.0.1:8080") == HostPort(host: "127.0.0.1", port: 8080))
        #expect(HostPort(parsing: "[::1]:0") == HostPort(host: "::1", port: 0))
        #expect(HostPort(parsing: "::1:80") == nil)
        #expect(HostPort(parsing: "host:99999") == nil)
        #expect(HostPort(parsing: "nohost") == nil)
    }

    @Test func didYouMean() {
        #expect(DidYouMean.suggestion(for: "listn", among: ["listen", "admin_listen"]) == "listen")
        #expect(DidYouMean.suggestion(for: "zzz", among: ["listen"]) == nil)
    }
}

@Suite struct AddressFormattingTests {
    @Test func ipv6IsCompressed() {
        #expect(CIDR("::1/128")?.description == "::1/128")
        #expect(CIDR("fd00::/8")?.description == "fd00::/8")
        #expect(CIDR("2001:db8:0:0:1:0:0:1")?.description == "2001:db8::1:0:0:1/128")
    }
}

@Suite struct ConfigFormulaTests {
    static let sc = "signing_certificate = \"Acme_Signing\""

    @Test func formulaErrorsCarryTheirPosition() {
        let cases: [(String, String)] = [
            (variant(Self.sc, Self.sc + "\nscope = '{!NOPE(1)}'"), "external_credential[0].scope"),
            (
                variant(Self.sc, Self.sc + "\n  [external_credential.jwt_claims]\n  tenant = '{!$User.Dept'"),
                "external_credential[0].jwt_claims.tenant"
            ),
            (
                variant(Self.sc, Self.sc + "\n  [external_credential.jwt_header]\n  kid = '{!\"a\" & }'"),
                "external_credential[0].jwt_header.kid"
            ),
            (
                validConfig + "\n  [[named_credential.custom_header]]\n  name = \"X-A\"\n  value = '{!$Bogus.X}'\n",
                "named_credential[0].custom_header[0].value"
            ),
        ]
        for (text, path) in cases {
            let found = issues(text).first { $0.keyPath == path }
            #expect(found?.message.hasPrefix("formula column ") == true, "\(path): \(issues(text))")
            #expect(found?.line != nil)
        }
    }

    @Test func salesforceScopeExampleParsesAndEvaluates() throws {
        let text = variant(Self.sc, Self.sc + "\nscope = '{!\"session:role:\" + $User.Department}'")
        let scope = try #require(try ConfigLoader.load(text: text).externalCredentials[0].scope)
        #expect(try scope.evaluate(in: FormulaContext(user: ["department": "Finance"])) == "session:role:Finance")
    }

    @Test func secretsOnlyInNamedCredentialHeadersThatAllowFormulas() {
        let secret = "value = '{!$Credential.Acme_API.AccessToken}'"
        let inExternal = variant(
            Self.sc, Self.sc + "\n  [[external_credential.custom_header]]\n  name = \"X-T\"\n  " + secret)
        #expect(
            issues(inExternal).contains {
                $0.keyPath == "external_credential[0].custom_header[0].value"
                    && $0.message.contains("allow_formulas_in_headers")
            })
        let namedOff = validConfig + "\n  [[named_credential.custom_header]]\n  name = \"X-T\"\n  " + secret + "\n"
        #expect(issues(namedOff).contains { $0.keyPath == "named_credential[0].custom_header[0].value" })
        let namedOn =
            variant(
                "external_credential = \"Acme_API\"",
                "external_credential = \"Acme_API\"\nallow_formulas_in_headers = true")
            + "\n  [[named_credential.custom_header]]\n  name = \"X-T\"\n  " + secret + "\n"
        #expect(issues(namedOn).isEmpty, "\(issues(namedOn))")
    }

    @Test func unknownOrOtherCredentialInFormula() {
        let text = variant(Self.sc, Self.sc + "\nscope = '{!$Credential.Other_API.ClientId}'")
        #expect(
            issues(text).contains {
                $0.keyPath == "external_credential[0].scope"
                    && $0.message.contains("unknown external credential 'Other_API'")
            })
    }
}
