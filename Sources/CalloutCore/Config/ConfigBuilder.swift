import Foundation

/// Turns decoded TOML tables into the model, applying each field's rule where it is read and the
/// cross-references once everything is known.
struct ConfigBuilder {
    let report: ConfigReport
    let baseDirectory: String

    func build(_ root: TOMLCursor, file: String) -> ProxyConfig {
        var config = ProxyConfig(sourceFile: file)
        if let proxy = root.table("proxy") { config.proxy = settings(proxy) }
        let callerCursors = root.tables("caller")
        let certificateCursors = root.tables("certificate")
        let externalCursors = root.tables("external_credential")
        let namedCursors = root.tables("named_credential")
        if let store = root.table("token_store") { config.tokenStore = tokenStore(store) }
        root.rejectUnknownKeys()

        config.callers = callerCursors.compactMap(caller)
        config.certificates = certificateCursors.compactMap(certificate)
        let maxValue = config.proxy.maxFormulaValueLength
        let externals = externalCursors.map {
            ($0, externalCredential($0, insecure: config.proxy.allowInsecureHTTP, maxValue: maxValue))
        }
        let nameds = namedCursors.map { ($0, namedCredential($0, insecure: config.proxy.allowInsecureHTTP)) }
        config.externalCredentials = externals.compactMap(\.1)
        config.namedCredentials = nameds.compactMap(\.1)

        unique(callerCursors, config.callers.map(\.name), kind: "caller")
        unique(certificateCursors, config.certificates.map(\.name), kind: "certificate")
        unique(externalCursors, config.externalCredentials.map(\.name), kind: "external credential")
        unique(namedCursors, config.namedCredentials.map(\.name), kind: "named credential")
        let references = References(
            config: config, certificates: certificateCursors, externalCredentials: externalCursors)
        crossReferences(references, externals: externals, nameds: nameds)
        return config
    }

    // MARK: - [proxy]

    private func settings(_ t: TOMLCursor) -> ProxySettings {
        var s = ProxySettings()
        if let v = t.string("listen") {
            if let hp = HostPort(parsing: v) {
                s.listen = hp
            } else {
                t.issue("listen", "must be HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)")
            }
        }
        if t.has("admin_listen"), let v = t.string("admin_listen") {
            if v.isEmpty || v == "off" {
                s.adminListen = nil
            } else if let hp = HostPort(parsing: v) {
                s.adminListen = hp
            } else {
                t.issue("admin_listen", "must be HOST:PORT, or \"off\" to disable the admin listener")
            }
        }
        if let list = t.stringArray("trusted_callers") {
            s.trustedCallers = []
            for (i, entry) in list.enumerated() {
                if let cidr = CIDR(entry) {
                    s.trustedCallers.append(cidr)
                } else {
                    report.add(
                        "\(t.keyPath("trusted_callers"))[\(i)]",
                        "'\(entry)' is not an address or CIDR block (e.g. 10.0.0.0/8, ::1/128)")
                }
            }
        }
        for (key, keyPath) in [
            ("permission_sets_header", \ProxySettings.permissionSetsHeader), ("profile_header", \.profileHeader),
            ("user_header_prefix", \.userHeaderPrefix), ("principal_header", \.principalHeader),
        ] {
            if let v = t.string(key) {
                if HeaderRules.isToken(v) {
                    s[keyPath: keyPath] = v
                } else {
                    t.issue(key, "must be a valid HTTP header name")
                }
            }
        }
        if let v = t.stringList("ca_file") { s.caFiles = v.map(resolvePath) }
        for setting in ProxySettingTable.numeric {
            switch setting.value {
            case .integer(let path, let range):
                if let v = t.int(setting.name, in: range) { s[keyPath: path] = v }
            case .number(let path, let range):
                if let v = t.double(setting.name, in: range) { s[keyPath: path] = v }
            }
        }
        if let v = t.bool("allow_insecure_http") { s.allowInsecureHTTP = v }
        if let v = t.string("admin_token_sha256") {
            if let digest = Hex.decode(v), digest.count == 32 {
                s.adminTokenSHA256 = digest
            } else {
                t.issue("admin_token_sha256", "must be 64 hexadecimal characters (the SHA-256 of the admin token)")
            }
        }
        if let v = t.bool("ready_requires_tokens") { s.readyRequiresTokens = v }
        if let list = t.stringArray("allowed_hosts") {
            s.allowedHosts = list.compactMap { entry in
                guard let name = HostCheck.hostName(entry), name == entry.lowercased() else {
                    t.issue("allowed_hosts", "'\(entry)' is not a host name or address (no port, scheme or path)")
                    return nil
                }
                return name
            }
        }
        if let v = t.string("access_log") {
            switch v {
            case "stderr": s.accessLog = .standardError
            case "off": s.accessLog = .off
            case "": t.issue("access_log", "must be \"stderr\", \"off\" or the path of a file")
            default: s.accessLog = .file(resolvePath(v))
            }
        }
        t.rejectUnknownKeys()
        return s
    }

    // MARK: - [[caller]], [[certificate]]

    private func caller(_ t: TOMLCursor) -> CallerConfig? {
        let name = validName(t, "name")
        var digest: [UInt8]? = nil
        if let v = t.requiredString("token_sha256") {
            if let d = Hex.decode(v), d.count == 32 {
                digest = d
            } else {
                t.issue(
                    "token_sha256",
                    "must be 64 hexadecimal characters: the SHA-256 of the bearer token or of user:password")
            }
        }
        let sets = t.stringArray("permission_sets") ?? []
        let profile = t.string("profile")
        var user: [String: String] = [:]
        if let u = t.table("user") {
            for (k, v) in u.stringEntries(expanding: true) {
                if user.keys.contains(where: { $0.caseInsensitiveEquals(k) }) {
                    u.issue(k, "is given twice (user field names are case-insensitive, like the headers they mirror)")
                }
                if !HeaderRules.isToken(k) {
                    u.issue(k, "user field names may contain only letters, digits, '-' and '_'")
                }
                if HeaderRules.hasControlCharacters(v) { u.issue(k, "must not contain control characters") }
                user[k] = v
            }
        }
        let trust = t.bool("trust_identity_headers") ?? false
        t.rejectUnknownKeys()
        if sets.isEmpty && profile == nil && !trust {
            t.issue(nil, "grants nothing: give permission_sets, a profile, or trust_identity_headers = true")
        }
        guard let name, let digest else { return nil }
        return CallerConfig(
            name: name, tokenSHA256: digest, permissionSets: sets, profile: profile, user: user,
            trustIdentityHeaders: trust)
    }

    private func certificate(_ t: TOMLCursor) -> CertificateConfig? {
        let name = validName(t, "name")
        let key = t.requiredString("private_key_file")
        let cert = t.string("certificate_file")
        let env = t.string("private_key_passphrase_env")
        if let env, !Self.isEnvironmentName(env) {
            t.issue("private_key_passphrase_env", "must be an environment variable name (letters, digits, underscores)")
        }
        t.rejectUnknownKeys()
        guard let name, let key else { return nil }
        return CertificateConfig(
            name: name, privateKeyFile: resolvePath(key), certificateFile: cert.map(resolvePath),
            privateKeyPassphraseEnv: env)
    }

    // MARK: - [[external_credential]]

    private func externalCredential(_ t: TOMLCursor, insecure: Bool, maxValue: Int) -> ExternalCredentialConfig? {
        let name = validName(t, "name")
        let label = validLabel(t)
        if let p = t.string("authentication_protocol"), p != "oauth2" {
            t.issue("authentication_protocol", "'\(p)' is not supported; use \"oauth2\"")
        }
        let auth = authentication(t, insecure: insecure)
        let signing = auth.flow.signsJWT ? t.requiredString("signing_certificate") : nil
        var algorithm = SigningAlgorithm.rs256
        if let a = t.string("signing_algorithm") {
            if let parsed = SigningAlgorithm(rawValue: a.uppercased()) {
                algorithm = parsed
            } else {
                t.issue(
                    "signing_algorithm",
                    "'\(a)' is not supported; use one of \(SigningAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")) (RS256 is the default)"
                )
            }
        }
        let scope = t.string("scope", expanding: false).flatMap { formula(t, "scope", $0) }
        var codes: [Int] = []
        if let list = t.intArray("additional_refresh_status_codes") {
            for (i, code) in list.enumerated() {
                let path = "\(t.keyPath("additional_refresh_status_codes"))[\(i)]"
                if code == 401 {
                    report.warn(path, "401 always refreshes; listing it changes nothing")
                } else if !((400...499).contains(code) || (600...999).contains(code)) {
                    report.add(
                        path, "\(code) is not allowed: use 400-499 or 600-999 (5xx are server faults, not stale tokens)"
                    )
                } else if codes.contains(code) {
                    report.add(path, "\(code) is listed twice")
                } else {
                    codes.append(code)
                }
            }
        }
        let expiration = t.int("jwt_expiration_seconds", in: 1...3600) ?? 120
        var claims: [(name: String, value: Formula)] = []
        if let c = t.table("jwt_claims") {
            for (k, v) in c.stringEntries(expanding: false) {
                if ExternalCredentialConfig.reservedClaims.contains(k) {
                    c.issue(
                        k,
                        "is set by the proxy for every assertion and cannot be overridden (iat and nbf are the signing time, jti is unique per assertion)"
                    )
                    continue
                }
                if let f = formula(c, k, v) { claims.append((k, f)) }
            }
        }
        var header: [(name: String, value: Formula)] = []
        if let h = t.table("jwt_header") {
            for (k, v) in h.stringEntries(expanding: false) {
                if ExternalCredentialConfig.reservedHeaderParameters.contains(k) {
                    h.issue(k, "is set by the proxy from signing_algorithm and cannot be overridden")
                }
                if let f = formula(h, k, v) { header.append((k, f)) }
            }
        }
        let headers = customHeaders(t)
        let principalCursors = t.tables("principal")
        let principals = principalCursors.compactMap(principal)
        let idpCert = t.string("identity_provider_client_certificate")
        let prefetch = t.bool("prefetch") ?? false
        checkAuthentication(t, auth, principals: principalCursors, identityProviderClientCertificate: idpCert)
        t.rejectUnknownKeys()

        unique(principalCursors, principals.map(\.name), kind: "principal", rule: NameRules.principalNameProblem)
        var seenSequence: [Int: Int] = [:]
        for (i, p) in principals.enumerated() {
            if let other = seenSequence[p.sequenceNumber] {
                report.add(
                    "\(principalCursors[i].path).sequence_number",
                    "sequence number \(p.sequenceNumber) is already used by principal '\(principals[other].name)'")
            } else {
                seenSequence[p.sequenceNumber] = i
            }
        }
        if principalCursors.isEmpty {
            t.issue("principal", "an external credential needs at least one [[...principal]]")
        }

        guard let name, let idp = auth.identityProviderURL ?? auth.issuer, signing != nil || !auth.flow.signsJWT
        else { return nil }
        var credential = ExternalCredentialConfig(
            name: name, label: label, identityProviderURL: idp, signingCertificate: signing ?? "",
            signingAlgorithm: algorithm, scope: scope, additionalRefreshStatusCodes: codes,
            jwtExpirationSeconds: expiration, jwtClaims: claims, jwtHeader: header,
            customHeaders: headers, principals: principals, identityProviderClientCertificate: idpCert,
            prefetch: prefetch)
        credential.identityProviderIssuer = auth.issuer
        credential.flow = auth.flow
        credential.clientAuthentication = auth.clientAuthentication
        return credential
    }

    private func principal(_ t: TOMLCursor) -> PrincipalConfig? {
        let name = validName(t, "name", rule: NameRules.principalNameProblem)
        let sequence =
            t.has("sequence_number")
            ? t.int("sequence_number")
            : {
                t.issue("sequence_number", "is required")
                return nil
            }()
        if let s = sequence, s < 1 { t.issue("sequence_number", "must be a positive integer, got \(s)") }
        let clientId = t.requiredString("client_id")
        if let c = clientId, c.trimming(" \t").isEmpty { t.issue("client_id", "must not be empty") }
        let sets = t.stringArray("permission_sets") ?? []
        let profiles = t.stringArray("profiles") ?? []
        let secret = clientSecretSource(t)
        t.rejectUnknownKeys()
        if sets.isEmpty && profiles.isEmpty {
            t.issue(nil, "has no permission set and no profile, so no caller could ever use it")
        }
        guard let name, let sequence, sequence >= 1, let clientId, !clientId.isEmpty else { return nil }
        return PrincipalConfig(
            name: name, sequenceNumber: sequence, clientId: clientId, permissionSets: sets, profiles: profiles,
            clientSecret: secret)
    }

    // MARK: - [[named_credential]]

    private func namedCredential(_ t: TOMLCursor, insecure: Bool) -> NamedCredentialConfig? {
        let name = validName(t, "name")
        let label = validLabel(t)
        let url = t.requiredString("url").flatMap { validURL(t, "url", $0, insecure: insecure, allowQuery: false) }
        let external = t.requiredString("external_credential")
        let enabled = t.bool("enabled") ?? true
        let generate = t.bool("generate_authorization_header") ?? true
        let formulasInHeaders = t.bool("allow_formulas_in_headers") ?? false
        let formulasInBody = t.bool("allow_formulas_in_body") ?? false
        let clientCert = t.string("client_certificate")
        let headers = customHeaders(t)
        t.rejectUnknownKeys()
        guard let name, let url, let external else { return nil }
        return NamedCredentialConfig(
            name: name, label: label, url: url, externalCredential: external, enabled: enabled,
            generateAuthorizationHeader: generate, allowFormulasInHeaders: formulasInHeaders,
            allowFormulasInBody: formulasInBody, clientCertificate: clientCert, customHeaders: headers)
    }

    private func customHeaders(_ t: TOMLCursor) -> [CustomHeaderConfig] {
        var out: [CustomHeaderConfig] = []
        var names: [String: Int] = [:]
        for (i, h) in t.tables("custom_header").enumerated() {
            let name = h.requiredString("name")
            let value = h.requiredString("value", expanding: false).flatMap { formula(h, "value", $0) }
            let sequence = h.int("sequence_number") ?? (i + 1)
            if sequence < 1 { h.issue("sequence_number", "must be a positive integer") }
            h.rejectUnknownKeys()
            guard let name else { continue }
            if !HeaderRules.isToken(name) {
                h.issue("name", "'\(name)' is not a valid HTTP header name")
                continue
            }
            if HeaderRules.isReserved(name) {
                h.issue("name", "'\(name)' is managed by the proxy and cannot be a custom header")
                continue
            }
            if names[name.lowercased()] != nil { h.issue("name", "header '\(name)' is defined twice") }
            names[name.lowercased()] = i
            if let value { out.append(CustomHeaderConfig(name: name, value: value, sequenceNumber: sequence)) }
        }
        return out.sorted { $0.sequenceNumber < $1.sequenceNumber }
    }

    // MARK: - Cross-references

    /// What a reference may point to. A name declared by an entry that has problems of its own
    /// is not reported again as unknown: the entry's problem is the cause, the reference an echo.
    private struct References {
        let config: ProxyConfig
        let declaredCertificates: Set<String>
        let declaredExternalCredentials: Set<String>

        init(config: ProxyConfig, certificates: [TOMLCursor], externalCredentials: [TOMLCursor]) {
            self.config = config
            func names(_ cursors: [TOMLCursor]) -> Set<String> {
                Set(cursors.compactMap { $0.table["name"]?.string?.lowercased() })
            }
            declaredCertificates = names(certificates)
            declaredExternalCredentials = names(externalCredentials)
        }

        func unknownCertificate(_ name: String) -> Bool {
            !declaredCertificates.contains(name.lowercased()) && config.certificate(name) == nil
        }

        func unknownExternalCredential(_ name: String) -> Bool {
            !declaredExternalCredentials.contains(name.lowercased()) && config.externalCredential(name) == nil
        }
    }

    private func crossReferences(
        _ references: References, externals: [(TOMLCursor, ExternalCredentialConfig?)],
        nameds: [(TOMLCursor, NamedCredentialConfig?)]
    ) {
        let config = references.config
        func checkCertificate(_ cursor: TOMLCursor, _ key: String, _ name: String?) {
            guard let name, references.unknownCertificate(name) else { return }
            cursor.issue(key, "no [[certificate]] is named '\(name)'" + hint(name, config.certificates.map(\.name)))
        }
        for case (let cursor, let credential?) in externals {
            if credential.flow.signsJWT {
                checkCertificate(cursor, "signing_certificate", credential.signingCertificate)
            }
            checkCertificate(
                cursor, "identity_provider_client_certificate", credential.identityProviderClientCertificate)
            let formulas: [(String, Formula)] =
                (credential.scope.map { [("scope", $0)] } ?? [])
                + credential.jwtClaims.map { ("jwt_claims.\($0.name)", $0.value) }
                + credential.jwtHeader.map { ("jwt_header.\($0.name)", $0.value) }
                + credential.customHeaders.enumerated().map { ("custom_header[\($0.offset)].value", $0.element.value) }
            for (key, f) in formulas {
                checkFormulaReferences(
                    cursor, key, f, references: references, inScope: credential.name, secretsAllowed: false)
            }
        }
        for case (let cursor, let named?) in nameds {
            if references.unknownExternalCredential(named.externalCredential) {
                cursor.issue(
                    "external_credential",
                    "no [[external_credential]] is named '\(named.externalCredential)'"
                        + hint(named.externalCredential, config.externalCredentials.map(\.name)))
            }
            checkCertificate(cursor, "client_certificate", named.clientCertificate)
            for (i, h) in named.customHeaders.enumerated() {
                checkFormulaReferences(
                    cursor, "custom_header[\(i)].value", h.value, references: references,
                    inScope: named.externalCredential, secretsAllowed: named.allowFormulasInHeaders)
            }
        }
    }

    private func checkFormulaReferences(
        _ cursor: TOMLCursor, _ key: String, _ f: Formula, references: References, inScope: String,
        secretsAllowed: Bool
    ) {
        for referenced in f.referencedCredentials.sorted() {
            if references.unknownExternalCredential(referenced) {
                cursor.issue(
                    key,
                    "formula refers to unknown external credential '\(referenced)'"
                        + hint(referenced, references.config.externalCredentials.map(\.name)))
            } else if !referenced.caseInsensitiveEquals(inScope) {
                cursor.issue(key, "formula refers to '\(referenced)', but only '\(inScope)' is resolved here")
            }
        }
        if f.referencesSecrets && !secretsAllowed {
            cursor.issue(
                key,
                "AccessToken and AuthorizationHeaderValue may be used only in custom headers of a named credential with allow_formulas_in_headers = true"
            )
        }
    }

    // MARK: - Field rules

    private func unique(
        _ cursors: [TOMLCursor], _ names: [String], kind: String, rule: (String) -> String? = NameRules.problem
    ) {
        var seen: Set<String> = []
        for cursor in cursors {
            guard let name = cursor.table["name"]?.string, rule(name) == nil else { continue }
            if !seen.insert(name.lowercased()).inserted {
                cursor.issue(
                    "name", "another \(kind) is already named '\(name)' (names are unique, case-insensitively)")
            }
        }
    }

    private func validName(
        _ t: TOMLCursor, _ key: String, rule: (String) -> String? = NameRules.problem
    ) -> String? {
        guard let name = t.requiredString(key) else { return nil }
        if let problem = rule(name) {
            t.issue(key, "'\(name)' is not a valid name: \(problem)")
            return nil
        }
        return name
    }

    private func validLabel(_ t: TOMLCursor) -> String? {
        guard let label = t.string("label") else { return nil }
        if label.count > NameRules.maxLabelLength {
            t.issue("label", "must be at most \(NameRules.maxLabelLength) characters")
        }
        return label
    }

    func validURL(_ t: TOMLCursor, _ key: String, _ text: String, insecure: Bool, allowQuery: Bool) -> URL? {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            let host = components.host, !host.isEmpty, let url = URL(string: text)
        else {
            t.issue(key, "'\(text)' is not an absolute URL")
            return nil
        }
        if scheme != "https" {
            if scheme == "http" && insecure { return url }
            t.issue(
                key,
                scheme == "http"
                    ? "must use https:// (allow_insecure_http = true permits http:// for local testing only)"
                    : "must be an https:// URL")
            return nil
        }
        if components.user != nil || components.password != nil {
            t.issue(key, "must not carry credentials")
            return nil
        }
        if !allowQuery && (components.query != nil || components.fragment != nil) {
            t.issue(key, "must not have a query string or fragment")
            return nil
        }
        if components.fragment != nil {
            t.issue(key, "must not have a fragment")
            return nil
        }
        return url
    }

    private func formula(_ t: TOMLCursor, _ key: String, _ text: String) -> Formula? {
        do {
            return try Formula(parsing: text)
        } catch {
            t.issue(key, error.description)
            return nil
        }
    }

    private func hint(_ name: String, _ candidates: [String]) -> String {
        DidYouMean.suggestion(for: name, among: candidates).map { "; did you mean '\($0)'?" } ?? ""
    }

    func resolvePath(_ path: String) -> String {
        if path.hasPrefix("/") || baseDirectory == "." || baseDirectory.isEmpty { return path }
        return ConfigLoader.absolutePath(path, workingDirectory: baseDirectory)
    }
}
