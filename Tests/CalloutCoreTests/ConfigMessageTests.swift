import Foundation
import Testing

@testable import CalloutCore

/// The messages a new user meets first: one cause per typo, resolved paths, a missing file,
/// unterminated strings, `${VAR}` expansion, `ca_file` lists and `no_principal`.
@Suite struct ConfigMessageTests {
    @Test func aMisspeltRequiredKeyIsReportedOnceWithItsCorrection() {
        let text = validConfig.replacingOccurrences(
            of: "signing_certificate = \"Acme_Signing\"", with: "signing_certficate = \"Acme_Signing\"")
        let found = issues(text)
        #expect(
            found.map(\.description) == [
                "test.conf:11: external_credential[0].signing_certficate: unknown key; did you mean 'signing_certificate'? (signing_certificate is required)"
            ])
    }

    @Test func aRequiredKeyThatIsSimplyMissingIsStillRequired() {
        let text = validConfig.replacingOccurrences(of: "signing_certificate = \"Acme_Signing\"\n", with: "")
        #expect(
            issues(text).map(\.description) == ["test.conf:8: external_credential[0].signing_certificate: is required"])
    }

    @Test func aReferenceToABrokenEntryIsNotReportedAgain() {
        // The certificate lacks its key file; the credential that signs with it is not "unknown".
        let text = validConfig.replacingOccurrences(of: "private_key_file = \"keys/acme.key\"\n", with: "")
        #expect(issues(text).map(\.description) == ["test.conf:4: certificate[0].private_key_file: is required"])
    }

    @Test func aGenuinelyUnknownReferenceIsStillReported() {
        let text = validConfig.replacingOccurrences(
            of: "external_credential = \"Acme_API\"", with: "external_credential = \"Acme_APl\"")
        #expect(
            issues(text).map(\.description) == [
                "test.conf:28: named_credential[0].external_credential: no [[external_credential]] is named 'Acme_APl'; did you mean 'Acme_API'?"
            ])
    }

    @Test func problemsFollowTheFileOrder() {
        let text = validConfig.replacingOccurrences(of: "listen = \"127.0.0.1:8080\"", with: "listen = \"nowhere\"")
            .replacingOccurrences(of: "sequence_number = 2", with: "sequence_number = 0")
            .replacingOccurrences(of: "url = \"https://api.acme.example/v2\"", with: "url = \"ftp://x\"")
        let lines = issues(text).compactMap(\.line)
        #expect(lines.count == 3)
        #expect(lines == lines.sorted())
    }

    @Test func relativePathsAreResolvedToAbsolutePaths() throws {
        let config = try ConfigLoader.load(text: validConfig, file: "conf/proxy.conf", baseDirectory: "/srv/app/conf")
        #expect(config.certificates[0].privateKeyFile == "/srv/app/conf/keys/acme.key")
        #expect(ConfigLoader.absolutePath("conf/../proxy.conf", workingDirectory: "/srv/app") == "/srv/app/proxy.conf")
    }

    @Test func aMissingFileSaysWhereItLookedAndHowToNameAnother() {
        #expect(
            ConfigLoader.unreadableFileMessage(absolutePath: "/srv/proxy.conf", exists: false, origin: .defaultFile)
                == "configuration file not found: looked for /srv/proxy.conf (the default, proxy.conf in the working directory; name another with --config FILE or $CALLOUT_PROXY_CONFIG)"
        )
        #expect(
            ConfigLoader.unreadableFileMessage(absolutePath: "/etc/x.conf", exists: false, origin: .option)
                == "configuration file not found: looked for /etc/x.conf (given with --config)")
        #expect(
            ConfigLoader.unreadableFileMessage(absolutePath: "/etc/x.conf", exists: true, origin: .environment)
                == "configuration file cannot be read: /etc/x.conf (given by $CALLOUT_PROXY_CONFIG)")
        #expect(ConfigLoader.locate(option: nil, environment: [:]) == ("proxy.conf", .defaultFile))
        #expect(ConfigLoader.locate(option: nil, environment: ["CALLOUT_PROXY_CONFIG": "/a"]) == ("/a", .environment))
        #expect(ConfigLoader.locate(option: "/b", environment: ["CALLOUT_PROXY_CONFIG": "/a"]) == ("/b", .option))
    }

    @Test func anUnterminatedStringSaysSo() {
        let text = validConfig.replacingOccurrences(
            of: "url = \"https://api.acme.example/v2\"", with: "url = \"https://api.acme.example/v2")
        #expect(
            issues(text).map(\.description) == [
                "test.conf:27: TOML syntax error at column 7: the string started with \" is not closed on this line (a string ends on the line it starts; use \"\"\" for text over several lines)"
            ])
        #expect(ConfigLoader.unterminatedStringMessage(#"a = "x" # "comment"#) == nil)
        #expect(ConfigLoader.unterminatedStringMessage(#"a = "x\"y""#) == nil)
        #expect(ConfigLoader.unterminatedStringMessage("a = 'x") != nil)
    }

    // MARK: - ${VAR}

    func load(_ text: String, _ environment: [String: String]) throws(ConfigError) -> ProxyConfig {
        try ConfigLoader.load(text: text, file: "test.conf", environment: environment)
    }

    @Test func variablesAndDefaultsAreExpandedInPlainValues() throws {
        let text =
            validConfig
            .replacingOccurrences(
                of: "listen = \"127.0.0.1:8080\"",
                with: "listen = \"${LISTEN:-127.0.0.1:8181}\"\ntrusted_callers = [\"${CALLERS}\"]"
            )
            .replacingOccurrences(of: "https://idp.acme.example/oauth2/token", with: "https://${IDP_HOST}/oauth2/token")
            .replacingOccurrences(of: "client_id = \"acme-reader\"", with: "client_id = \"$${literal}-${ENV_NAME}\"")
        let config = try load(
            text, ["IDP_HOST": "idp.test.example", "CALLERS": "10.0.0.0/8", "ENV_NAME": "staging", "LISTEN": ""])
        #expect(config.proxy.listen == HostPort(host: "127.0.0.1", port: 8181))
        #expect(config.proxy.trustedCallers == [CIDR("10.0.0.0/8")!])
        #expect(
            config.externalCredentials[0].identityProviderURL.absoluteString == "https://idp.test.example/oauth2/token")
        #expect(config.externalCredentials[0].principal("Reader")?.clientId == "${literal}-staging")
    }

    @Test func anUnsetVariableIsAProblemThatNamesIt() {
        let text = validConfig.replacingOccurrences(
            of: "https://idp.acme.example/oauth2/token", with: "https://${IDP_HOST}/token")
        #expect(throws: ConfigError.self) { try load(text, [:]) }
        do { _ = try load(text, [:]) } catch {
            #expect(
                error.issues.map(\.description) == [
                    "test.conf:10: external_credential[0].identity_provider_url: environment variable IDP_HOST is not set (give a default with ${IDP_HOST:-default})"
                ])
        }
    }

    @Test func formulaValuesAreNeverExpanded() {
        let secret = "sk_live_abcdef123456"
        let text =
            validConfig + """

                  [[named_credential.custom_header]]
                  name = "X-Api-Key"
                  value = "${ACME_API_KEY}"
                """
        do {
            _ = try load(text, ["ACME_API_KEY": secret])
            Issue.record("a formula value was expanded")
        } catch {
            #expect(
                error.issues.map(\.description) == [
                    "test.conf:31: named_credential[0].custom_header[0].value: environment variables are not expanded in formula values, which are sent to the identity provider or endpoint (write $${ for a literal '${')"
                ])
            #expect(!error.description.contains(secret))
        }
    }

    @Test func aFormulaValueMayCarryALiteralDollarBrace() throws {
        let text = validConfig.replacingOccurrences(
            of: "signing_certificate = \"Acme_Signing\"",
            with: "signing_certificate = \"Acme_Signing\"\nscope = \"a$${b}\"")
        let config = try load(text, [:])
        #expect(try config.externalCredentials[0].scope?.evaluate(in: FormulaContext()) == "a${b}")
    }

    @Test func aKeyOrMultiLineSecretCannotBeExpandedIntoTheFile() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
        let text = validConfig.replacingOccurrences(of: "\"keys/acme.key\"", with: "\"${SIGNING_KEY}\"")
        do {
            _ = try load(text, ["SIGNING_KEY": pem])
            Issue.record("a PEM value was expanded")
        } catch {
            #expect(
                error.issues.map(\.description) == [
                    "test.conf:6: certificate[0].private_key_file: the value of ${SIGNING_KEY} spans lines or holds a PEM block: keys and secrets are read from files (private_key_file) and *_env keys, never expanded into the configuration"
                ])
            #expect(!error.description.contains("MIIEvQ"))
        }
    }

    @Test func expansionSyntaxErrorsAreNamed() {
        let expansion = EnvironmentExpansion(environment: ["A": "1"])
        #expect(expansion.expand("x${A") == .failure(.unterminated))
        #expect(expansion.expand("${1A}") == .failure(.invalidName("1A")))
        #expect(expansion.expand("$A ${A}$") == .success("$A 1$"))
        #expect(expansion.expand("${B:-}") == .success(""))
    }

    // MARK: - ca_file

    @Test func caFileTakesOneFileOrAList() throws {
        let one = try ConfigLoader.load(
            text: validConfig.replacingOccurrences(of: "[proxy]", with: "[proxy]\nca_file = \"ca.pem\""),
            baseDirectory: "/etc/callout")
        #expect(one.proxy.caFiles == ["/etc/callout/ca.pem"])
        let list = try ConfigLoader.load(
            text: validConfig.replacingOccurrences(
                of: "[proxy]", with: "[proxy]\nca_file = [\"corp.pem\", \"/opt/dev/ca.pem\"]"),
            baseDirectory: "/etc/callout")
        #expect(list.proxy.caFiles == ["/etc/callout/corp.pem", "/opt/dev/ca.pem"])
        let wrong = issues(validConfig.replacingOccurrences(of: "[proxy]", with: "[proxy]\nca_file = 3"))
        #expect(
            wrong.map(\.description) == [
                "test.conf:2: proxy.ca_file: must be a string or an array of strings, not an integer"
            ])
    }

    // MARK: - no_principal

    @Test func noPrincipalSaysWhichHeadersWereReadAndThatNothingArrived() throws {
        let config = try ConfigLoader.load(text: validConfig)
        var alias: String?
        let result = CalloutRouter.route(
            config: config, identityResolver: IdentityResolver(settings: config.proxy, callers: []), method: "GET",
            target: "http://Acme/items", headers: [("Host", "Acme")], peer: [127, 0, 0, 1], alias: &alias)
        guard case .failure(let problem) = result else {
            Issue.record("expected no_principal")
            return
        }
        #expect(problem.code == "no_principal")
        #expect(
            problem.detail
                == "No permission set or profile arrived (read from the X-Callout-Permission-Sets and X-Callout-Profile headers), so no principal of external credential 'Acme_API' applies."
        )
    }

    @Test func noPrincipalNamesWhatArrived() {
        let identity = CallerIdentity(callerName: "billing", permissionSets: ["Acme_Reader"], profile: "Ops")
        let problem = Problem.noPrincipal("Acme", credential: "Acme_API", identity: identity, settings: ProxySettings())
        #expect(
            problem.detail
                == "The caller's permission sets ('Acme_Reader') and profile ('Ops'), read from the X-Callout-Permission-Sets and X-Callout-Profile headers and caller 'billing', qualify for no principal of external credential 'Acme_API'."
        )
    }
}
