import Testing

@testable import CalloutCore

@Suite struct TokenStoreConfigTests {
    static func withStore(_ body: String) -> String {
        validConfig + "\n[token_store]\n" + body + "\n"
    }

    @Test func aMinimalStoreIsReadWithItsDefaults() throws {
        let config = try ConfigLoader.load(
            text: Self.withStore(
                """
                url = "postgresql://callout@db.internal:6432/tokens"
                encryption_key_env = "CALLOUT_TOKEN_STORE_KEY"
                """))
        let store = try #require(config.tokenStore)
        #expect(store.host == "db.internal")
        #expect(store.port == 6432)
        #expect(store.username == "callout")
        #expect(store.database == "tokens")
        #expect(store.passwordEnv == nil)
        #expect(store.tls == .prefer)
        #expect(store.table == "callout_tokens")
        #expect(store.timeoutMilliseconds == 500)
        #expect(store.leaseSeconds == 15)
        #expect(try ConfigLoader.load(text: validConfig).tokenStore == nil)
    }

    @Test func urlsAreParsed() throws {
        #expect(
            try TokenStoreConfig.parseURL("postgres://u@[::1]/d").get()
                == .init(host: "::1", port: 5432, username: "u", database: "d"))
        #expect(try TokenStoreConfig.parseURL("postgresql://u@h:1/d").get().port == 1)
        let problems: [(String, TokenStoreConfig.URLProblem)] = [
            ("mysql://u@h/d", .scheme), ("postgresql://h/d", .user), ("postgresql://u:secret@h/d", .password),
            ("postgresql://u@/d", .host), ("postgresql://u@h:0/d", .port), ("postgresql://u@h:x/d", .port),
            ("postgresql://u@h", .database), ("postgresql://u@h/d?sslmode=require", .query),
        ]
        for (url, problem) in problems {
            #expect(throws: problem, "\(url)") { try TokenStoreConfig.parseURL(url).get() }
        }
    }

    @Test func secretsInTheFileAndBadValuesAreRefusedWithoutEchoingThem() {
        let found = issues(
            Self.withStore(
                """
                url = "postgresql://callout:hunter2@db/tokens"
                password = "hunter2"
                encryption_key = "c2VjcmV0"
                encryption_key_env = "not a name"
                tls = "always"
                table = "Tokens; DROP TABLE x"
                timeout_ms = 5
                """))
        let keys = Set(found.map(\.keyPath))
        for key in [
            "token_store.url", "token_store.password", "token_store.encryption_key", "token_store.encryption_key_env",
            "token_store.tls", "token_store.table", "token_store.timeout_ms",
        ] {
            #expect(keys.contains(key), "\(key): \(found)")
        }
        #expect(!found.map(\.message).joined().contains("hunter2"))
        #expect(!found.map(\.message).joined().contains("c2VjcmV0"))
        #expect(
            issues(Self.withStore(#"url = "postgresql://u@h/d""#)).map(\.keyPath) == ["token_store.encryption_key_env"])
    }
}
