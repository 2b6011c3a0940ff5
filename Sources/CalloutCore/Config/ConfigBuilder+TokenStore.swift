extension ConfigBuilder {
    /// `[token_store]`.
    func tokenStore(_ t: TOMLCursor) -> TokenStoreConfig? {
        let url = t.requiredString("url")
        var parsed: TokenStoreConfig.ParsedURL? = nil
        if let url {
            switch TokenStoreConfig.parseURL(url) {
            case .success(let p): parsed = p
            case .failure(let problem): t.issue("url", problem.description)
            }
        }
        if t.consume("password") {
            t.issue("password", "is refused: give the name of an environment variable holding it in password_env")
        }
        if t.consume("encryption_key") {
            t.issue(
                "encryption_key",
                "is refused: give the name of an environment variable holding it in encryption_key_env")
        }
        let passwordEnv = environmentName(t, "password_env")
        let keyEnv = t.requiredString("encryption_key_env").flatMap { _ in environmentName(t, "encryption_key_env") }
        var previous: [String] = []
        if let list = t.stringArray("previous_encryption_key_envs") {
            for name in list {
                if Self.isEnvironmentName(name) {
                    previous.append(name)
                } else {
                    t.issue(
                        "previous_encryption_key_envs",
                        "'\(String(name.prefix(40)))' is not an environment variable name (letters, digits, underscores)"
                    )
                }
            }
        }
        var tls = TokenStoreConfig.TLSMode.prefer
        if let v = t.string("tls") {
            if let mode = TokenStoreConfig.TLSMode(rawValue: v) {
                tls = mode
            } else {
                t.issue("tls", "must be \"disable\", \"prefer\" or \"require\"")
            }
        }
        let caFile = t.string("ca_file").map(resolvePath)
        if caFile != nil, tls != .require { t.issue("ca_file", "applies only with tls = \"require\"") }
        let timeout = t.int("timeout_ms", in: 10...60_000) ?? TokenStoreConfig.defaultTimeoutMilliseconds
        let lease = t.int("lease_seconds", in: 1...300) ?? TokenStoreConfig.defaultLeaseSeconds
        let retry = t.int("retry_seconds", in: 1...3600) ?? TokenStoreConfig.defaultRetrySeconds
        let maxConnections = t.int("max_connections", in: 1...100) ?? TokenStoreConfig.defaultMaxConnections
        var table = TokenStoreConfig.defaultTable
        if let v = t.string("table") {
            if TokenStoreConfig.isValidTableName(v) {
                table = v
            } else {
                t.issue("table", "must be a lower-case name of letters, digits and underscores, at most 63 characters")
            }
        }
        t.rejectUnknownKeys()
        guard let url, let parsed, let keyEnv else { return nil }
        return TokenStoreConfig(
            url: url, host: parsed.host, port: parsed.port, username: parsed.username, database: parsed.database,
            passwordEnv: passwordEnv, encryptionKeyEnv: keyEnv, previousEncryptionKeyEnvs: previous, tls: tls,
            caFile: caFile, timeoutMilliseconds: timeout, leaseSeconds: lease, retrySeconds: retry, table: table,
            maxConnections: maxConnections)
    }

    private func environmentName(_ t: TOMLCursor, _ key: String) -> String? {
        guard let name = t.string(key) else { return nil }
        guard Self.isEnvironmentName(name) else {
            t.issue(key, "must be the name of an environment variable (letters, digits, underscores), not a secret")
            return nil
        }
        return name
    }

    /// Whether `name` can be an `*_env` key's value: letters, digits and underscores.
    static func isEnvironmentName(_ name: String) -> Bool {
        !name.isEmpty && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
    }
}
