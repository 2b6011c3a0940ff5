import CalloutCore
import CalloutDevTools
import CalloutServer
import CalloutTokenStore
import CalloutTokens
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Testing

/// Replicas sharing tokens through a real PostgreSQL (a throwaway cluster per test), with the
/// development identity provider counting exchanges.
@Suite(.serialized, .enabled(if: PostgresTestCluster.available))
struct FleetTests {
    static let keyEnv = "CALLOUT_TEST_STORE_KEY"
    static let passwordEnv = "CALLOUT_TEST_STORE_PASSWORD"

    /// A fleet: the cluster, the local identity provider and upstream, and running replicas.
    final class Fleet: @unchecked Sendable {
        let cluster: PostgresTestCluster
        let env: LocalEnvironment
        let key: String
        var replicas: [(service: CalloutProxyService, running: Task<Void, any Error>, logs: LogCapture)] = []

        init(cluster: PostgresTestCluster, env: LocalEnvironment) {
            self.cluster = cluster
            self.env = env
            self.key = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        }

        var idpCalls: Int { env.identityProvider.tokenRequestCount }

        func storeSection(extra: String = "") -> String {
            """

            [token_store]
            url = "\(cluster.url)"
            password_env = "\(FleetTests.passwordEnv)"
            encryption_key_env = "\(FleetTests.keyEnv)"
            tls = "disable"
            retry_seconds = 1
            timeout_ms = 3000
            \(extra)
            """
        }

        /// Starts a replica with the standard configuration and `[token_store]`.
        @discardableResult
        func addReplica(storeExtra: String = "", environment: [String: String] = [:]) async throws
            -> CalloutProxyService
        {
            // Admin on (for /readyz); a generous connect limit: a burst opens a hundred TLS
            // connections per replica at once on a small machine.
            let text = ProxyHarness.standardConfig(
                env, proxySettings: "connect_timeout_seconds = 30", extra: storeSection(extra: storeExtra)
            ).replacingOccurrences(of: "admin_listen = \"off\"", with: "admin_listen = \"127.0.0.1:0\"")
            let config = try ConfigLoader.load(text: text)
            let logs = LogCapture()
            var variables = [FleetTests.keyEnv: key, FleetTests.passwordEnv: cluster.password]
            for (k, v) in environment { variables[k] = v }
            let service = try await CalloutProxyService.start(
                config: config, materials: try CredentialMaterials.load(config), logger: logs.logger(level: .debug),
                environment: variables)
            let running = Task { try await service.run() }
            replicas.append((service, running, logs))
            return service
        }

        /// A callout through replica `index` for `department` (each department is a token of its own).
        func callout(_ index: Int, department: String, path: String = "/x") async throws -> RawHTTPClient.Response {
            let service = replicas[index].service
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: "Acme")
            headers.add(name: "X-Callout-Permission-Sets", value: "Readers")
            headers.add(name: "X-Callout-User-Department", value: department)
            return try await RawHTTPClient.send(
                to: try SocketAddress(ipAddress: "127.0.0.1", port: service.listenAddress.port ?? 0),
                head: HTTPRequestHead(version: .http1_1, method: .GET, uri: "http://Acme" + path, headers: headers),
                timeout: .seconds(30))
        }

        var allLogs: String { replicas.map(\.logs.text).joined(separator: "\n") }

        func shutdown() async {
            for replica in replicas { replica.service.beginShutdown() }
            for replica in replicas {
                _ = try? await replica.running.value
                await replica.service.close()
            }
            await env.shutdown()
            await cluster.remove()
        }
    }

    static func withFleet(replicas: Int, _ body: (Fleet) async throws -> Void) async throws {
        let cluster = try await PostgresTestCluster.start()
        let env: LocalEnvironment
        do {
            env = try await LocalEnvironment.start(clientIds: ["acme-reader", "acme-admin"])
        } catch {
            await cluster.remove()
            throw error
        }
        let fleet = Fleet(cluster: cluster, env: env)
        do {
            for _ in 0..<replicas { try await fleet.addReplica() }
            try await body(fleet)
        } catch {
            print("fleet test failed; logs:\n" + String(fleet.allLogs.suffix(6000)))
            await fleet.shutdown()
            throw error
        }
        await fleet.shutdown()
    }

    @Test func aColdBurstAcrossThreeReplicasMakesOneExchange() async throws {
        try await Self.withFleet(replicas: 3) { fleet in
            let responses = try await withThrowingTaskGroup(of: RawHTTPClient.Response.self) { group in
                for i in 0..<300 {
                    group.addTask { try await fleet.callout(i % 3, department: "Burst", path: "/burst/\(i)") }
                }
                return try await group.reduce(into: [RawHTTPClient.Response]()) { $0.append($1) }
            }
            let statuses = responses.map(\.status)
            if let failed = responses.first(where: { $0.status != 200 }) { print("not 200: \(failed.body)") }
            #expect(statuses.count == 300)
            #expect(
                statuses.allSatisfy { $0 == 200 }, "\(Dictionary(grouping: statuses, by: { $0 }).mapValues(\.count))")
            #expect(fleet.idpCalls == 1, "identity provider calls for a cold burst of 300 across 3 replicas")
            // Every replica holds the one token, two of them from the store.
            let sources = fleet.replicas.flatMap { $0.service.tokens.cache.snapshot().compactMap(\.origin) }
            #expect(sources.count == 3)
            #expect(sources.filter { $0 == .tokenStore }.count == 2, "\(sources)")
            // The token is sealed in the store, never in clear.
            let token = try #require(
                fleet.env.upstream.requests.last?.headers.first { $0.name.lowercased() == "authorization" }?.value)
            let dump = try await fleet.cluster.sql(
                "SELECT encode(sealed, 'escape') || encode(sealed, 'hex') FROM callout_tokens")
            let bare = String(token.split(separator: " ").last ?? "")
            #expect(!bare.isEmpty && !dump.contains(bare))
            #expect(!fleet.allLogs.contains(bare), "a token in the log")
            #expect(!fleet.allLogs.contains(fleet.key), "the store's key in the log")
            #expect(!fleet.allLogs.contains(fleet.cluster.password), "the store's password in the log")
            // The admin view says where each token came from, and holds no token.
            var views: [String] = []
            for replica in fleet.replicas {
                let admin = try #require(replica.service.adminAddress)
                let credentials = try await RawHTTPClient.send(
                    to: admin,
                    head: HTTPRequestHead(
                        version: .http1_1, method: .GET, uri: "/credentials", headers: ["Host": "127.0.0.1"]))
                #expect(credentials.status == 200)
                views.append(credentials.body)
            }
            #expect(views.filter { $0.contains("\"token_store\"") }.count == 2, "\(views)")
            #expect(views.filter { $0.contains("\"identity_provider\"") }.count == 1)
            #expect(!views.joined().contains(bare) && !views.joined().contains(fleet.key))
            // A later replica starts warm from the store.
            let late = try await fleet.addReplica()
            #expect(try await fleet.callout(3, department: "Burst").status == 200)
            #expect(fleet.idpCalls == 1)
            #expect(late.tokens.cache.snapshot().first?.origin == .tokenStore)
            let scrape = late.metrics.scrape(cache: late.tokens.cache.stats, openConnections: 0)
            #expect(scrape.contains("callout_token_store_hits_total 1"), "\(scrape)")
        }
    }

    @Test func aRevokedTokenCostsTheFleetAtMostTwoFetches() async throws {
        try await Self.withFleet(replicas: 3) { fleet in
            for i in 0..<3 { #expect(try await fleet.callout(i, department: "Revoked").status == 200) }
            #expect(fleet.idpCalls == 1)
            let header = try #require(
                fleet.env.upstream.requests.last?.headers.first { $0.name.lowercased() == "authorization" }?.value)
            fleet.env.identityProvider.revoke(token: String(header.split(separator: " ").last ?? ""))
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<60 {
                    group.addTask { try await fleet.callout(i % 3, department: "Revoked", path: "/after/\(i)").status }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(
                statuses.allSatisfy { $0 == 200 }, "\(Dictionary(grouping: statuses, by: { $0 }).mapValues(\.count))")
            #expect(fleet.idpCalls - 1 <= 2, "fetches after a revocation: \(fleet.idpCalls - 1)")
            #expect(fleet.idpCalls - 1 >= 1)
        }
    }

    @Test func theStoreDownFailsNoCalloutAndSharingResumesWhenItIsBack() async throws {
        try await Self.withFleet(replicas: 2) { fleet in
            #expect(try await fleet.callout(0, department: "Before").status == 200)
            #expect(try await fleet.callout(1, department: "Before").status == 200)
            #expect(fleet.idpCalls == 1)
            try await fleet.cluster.stopServer()
            // Cached tokens and new ones alike: every callout succeeds without the store.
            for i in 0..<2 {
                #expect(try await fleet.callout(i, department: "Before").status == 200)
                #expect(try await fleet.callout(i, department: "During").status == 200)
            }
            #expect(fleet.idpCalls == 3, "each replica fetched its own token while the store was down")
            // Said in /readyz, which stays ready.
            let admin = try #require(fleet.replicas[0].service.adminAddress)
            let ready = try await RawHTTPClient.send(
                to: admin,
                head: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/readyz", headers: ["Host": "127.0.0.1"]))
            #expect(ready.status == 200)
            #expect(ready.body.contains("token_store") && ready.body.contains("unavailable"), "\(ready.body)")
            #expect(fleet.replicas[0].logs.text.contains("token store unavailable"))
            try await fleet.cluster.startServer()
            // After retry_seconds (1 s) the store is tried again; one replica's fetch serves the other.
            try await Task.sleep(for: .milliseconds(1500))
            #expect(try await fleet.callout(0, department: "After").status == 200)
            let afterFirst = fleet.idpCalls
            #expect(try await fleet.callout(1, department: "After").status == 200)
            #expect(fleet.idpCalls == afterFirst, "the second replica read the first one's token")
            #expect(fleet.replicas[1].logs.text.contains("token store available again"))
        }
    }

    @Test func aTamperedOrMovedRowIsNeverServed() async throws {
        try await Self.withFleet(replicas: 2) { fleet in
            #expect(try await fleet.callout(0, department: "Tamper").status == 200)
            #expect(fleet.idpCalls == 1)
            // One bit of the sealed token flipped.
            try await fleet.cluster.sql(
                "UPDATE callout_tokens SET sealed = set_byte(sealed, 20, get_byte(sealed, 20) # 1)")
            #expect(try await fleet.callout(1, department: "Tamper").status == 200)
            #expect(fleet.idpCalls == 2, "the altered row was not served")
            #expect(fleet.replicas[1].logs.text.contains("token store row not served"))
            // A valid row's sealed token moved onto another key's row: sealed for its own key, so
            // it does not open there.
            func rowDigests() async throws -> Set<String> {
                Set(
                    try await fleet.cluster.sql("SELECT encode(key_digest, 'hex') FROM callout_tokens").split(
                        separator: "\n"
                    )
                    .map(String.init))
            }
            let before = try await rowDigests()
            #expect(try await fleet.callout(0, department: "Source").status == 200)
            let source = try #require(try await rowDigests().subtracting(before).first)
            #expect(try await fleet.callout(0, department: "Moved").status == 200)
            let moved = try #require(try await rowDigests().subtracting(before).subtracting([source]).first)
            let calls = fleet.idpCalls
            try await fleet.cluster.sql(
                """
                UPDATE callout_tokens m SET sealed = s.sealed, key_id = s.key_id, token_digest = s.token_digest,
                       issued_at = s.issued_at, refresh_at = s.refresh_at, expires_at = s.expires_at
                FROM callout_tokens s
                WHERE m.key_digest = decode('\(moved)', 'hex') AND s.key_digest = decode('\(source)', 'hex')
                """)
            let sourceToken = try #require(
                fleet.env.upstream.requests.dropLast().last?.headers.first { $0.name.lowercased() == "authorization" }?
                    .value)
            #expect(try await fleet.callout(1, department: "Moved").status == 200)
            #expect(fleet.idpCalls == calls + 1, "the moved row was not served")
            let used = fleet.env.upstream.requests.last?.headers.first { $0.name.lowercased() == "authorization" }?
                .value
            #expect(used != sourceToken)
            // Expired rows are removed.
            try await fleet.cluster.sql(
                """
                INSERT INTO callout_tokens (key_digest, sealed, key_id, token_digest, issued_at, refresh_at, expires_at)
                VALUES ('\\x00', '\\x00', '\\x00', '\\x00', now() - interval '2 hours', now() - interval '2 hours',
                        now() - interval '1 hour')
                """)
            #expect(await fleet.replicas[0].service.tokenStore?.shared.removeExpired() == 1)
            let scrape = fleet.replicas[1].service.metrics.scrape(
                cache: fleet.replicas[1].service.tokens.cache.stats, openConnections: 0)
            #expect(scrape.contains("callout_token_store_rejected_rows_total{reason=\"not_authentic\"} 2"), "\(scrape)")
        }
    }

    @Test func aRotatedKeyStillOpensRowsSealedWithThePreviousOne() async throws {
        try await Self.withFleet(replicas: 1) { fleet in
            #expect(try await fleet.callout(0, department: "Rotate").status == 200)
            #expect(fleet.idpCalls == 1)
            let newKey = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
            // The new replica seals with a new key and opens with the old one.
            try await fleet.addReplica(
                storeExtra: "previous_encryption_key_envs = [\"CALLOUT_TEST_STORE_OLD_KEY\"]",
                environment: [FleetTests.keyEnv: newKey, "CALLOUT_TEST_STORE_OLD_KEY": fleet.key])
            #expect(try await fleet.callout(1, department: "Rotate").status == 200)
            #expect(fleet.idpCalls == 1, "the row sealed with the previous key was read")
            // A replica with neither key cannot open it: a miss, never a failure.
            let otherKey = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
            try await fleet.addReplica(environment: [FleetTests.keyEnv: otherKey])
            #expect(try await fleet.callout(2, department: "Rotate").status == 200)
            #expect(fleet.idpCalls == 2)
            #expect(fleet.replicas[2].logs.text.contains("sealed with a key this replica does not have"))
        }
    }

    @Test func checkReportsTheStoreAndAMissingKeyStopsStartUp() async throws {
        let cluster = try await PostgresTestCluster.start()
        do {
            try await Self.checkReports(cluster)
        } catch {
            await cluster.remove()
            throw error
        }
        await cluster.remove()
    }

    static func checkReports(_ cluster: PostgresTestCluster) async throws {
        let env = try await LocalEnvironment.start(clientIds: ["acme-reader", "acme-admin"])
        defer { Task { await env.shutdown() } }
        let fleet = Fleet(cluster: cluster, env: env)
        let config = try ConfigLoader.load(text: ProxyHarness.standardConfig(env, extra: fleet.storeSection()))
        let store = try #require(config.tokenStore)
        let environment = [Self.keyEnv: fleet.key, Self.passwordEnv: cluster.password]
        let before = await TokenStoreService.probe(
            store, environment: environment, timeout: .seconds(10),
            eventLoopGroup: .singletonMultiThreadedEventLoopGroup)
        #expect(before == .schema("table callout_tokens does not exist"))
        // Start-up makes it.
        let service = try await CalloutProxyService.start(
            config: config, materials: try CredentialMaterials.load(config), logger: Logger(label: "fleet"),
            environment: environment)
        await service.close()
        let after = await TokenStoreService.probe(
            store, environment: environment, timeout: .seconds(10),
            eventLoopGroup: .singletonMultiThreadedEventLoopGroup)
        #expect(after == .ready)
        // A wrong password is reported, without it.
        let wrong = await TokenStoreService.probe(
            store, environment: [Self.keyEnv: fleet.key, Self.passwordEnv: "not-the-password"], timeout: .seconds(10),
            eventLoopGroup: .singletonMultiThreadedEventLoopGroup)
        guard case .unreachable(let reason) = wrong else {
            Issue.record("a wrong password: \(wrong)")
            return
        }
        #expect(reason.contains("28P01") || reason.lowercased().contains("password"), "\(reason)")
        #expect(!reason.contains("not-the-password"))
        // No key: start-up stops with the variable's name, and no value.
        await #expect {
            _ = try await CalloutProxyService.start(
                config: config, materials: try CredentialMaterials.load(config), logger: Logger(label: "fleet"),
                environment: [Self.passwordEnv: cluster.password])
        } throws: { error in
            "\(error)" == "token_store.encryption_key_env: CALLOUT_TEST_STORE_KEY is not set"
        }
    }
}
