import Foundation
import Testing

/// A throwaway PostgreSQL cluster for the token store's tests: Debian's server binaries, a
/// temporary data folder, a free loopback port, password (SCRAM) authentication, stopped and
/// removed at the end. Started as the `postgres` user when the tests run as root (initdb refuses
/// root). Where no server binaries are installed the fleet tests are skipped, unless
/// `CALLOUT_REQUIRE_POSTGRES=1` (set by `.ci/run`) makes that a failure.
final class PostgresTestCluster: Sendable {
    let directory: String
    let port: Int
    let binaries: String
    let username = "callout"
    let password: String
    let database = "postgres"

    /// Where `initdb` and `pg_ctl` are, or `nil`.
    static let binaryFolder: String? = {
        if let given = ProcessInfo.processInfo.environment["CALLOUT_TEST_POSTGRES_BIN"] { return given }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap(Int.init).sorted(by: >)
        for version in versions where FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/initdb") {
            return "\(root)/\(version)/bin"
        }
        return nil
    }()

    /// Whether the fleet tests run here (see the type's description).
    static var available: Bool {
        binaryFolder != nil || ProcessInfo.processInfo.environment["CALLOUT_REQUIRE_POSTGRES"] == "1"
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private static var runAsPostgres: Bool { getuid() == 0 }

    static func start() async throws -> PostgresTestCluster {
        guard let binaries = binaryFolder else {
            throw Failure(
                description:
                    "PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)")
        }
        let directory = NSTemporaryDirectory() + "callout-pg-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let password = UUID().uuidString
        try password.write(toFile: directory + "/pw", atomically: true, encoding: .utf8)
        if runAsPostgres { try await run("/bin/chown", ["-R", "postgres", directory], asPostgres: false) }
        let port = try await closedLoopbackPort()
        let cluster = PostgresTestCluster(directory: directory, port: port, binaries: binaries, password: password)
        do {
            try await run(
                binaries + "/initdb",
                [
                    "-D", directory + "/data", "-U", "callout", "--pwfile=" + directory + "/pw", "--auth=scram-sha-256",
                    "-E", "UTF8", "--no-sync",
                ])
            try await cluster.startServer()
        } catch {
            await cluster.remove()
            throw error
        }
        return cluster
    }

    private init(directory: String, port: Int, binaries: String, password: String) {
        self.directory = directory
        self.port = port
        self.binaries = binaries
        self.password = password
    }

    var url: String { "postgresql://\(username)@127.0.0.1:\(port)/\(database)" }

    /// Starts (or restarts) the server, waiting until it accepts connections.
    func startServer() async throws {
        try await Self.run(
            binaries + "/pg_ctl",
            [
                "-D", directory + "/data", "-l", directory + "/server.log", "-w", "-t", "60", "-o",
                "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60",
                "start",
            ])
    }

    /// Stops the server at once (connections are cut).
    func stopServer() async throws {
        try await Self.run(
            binaries + "/pg_ctl", ["-D", directory + "/data", "-m", "immediate", "-w", "-t", "60", "stop"])
    }

    /// Runs SQL through psql over the Unix socket; returns its output.
    @discardableResult
    func sql(_ statement: String) async throws -> String {
        try await Self.run(
            binaries + "/psql",
            [
                "-h", directory, "-p", String(port), "-U", username, "-d", database, "-At", "-v", "ON_ERROR_STOP=1",
                "-c", statement,
            ],
            environment: ["PGPASSWORD": password])
    }

    /// Stops the server and removes its folder.
    func remove() async {
        _ = try? await stopServer()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// ``runBlocking(_:_:asPostgres:environment:)`` on a thread of its own.
    @discardableResult
    private static func run(
        _ executable: String, _ arguments: [String], asPostgres: Bool = runAsPostgres,
        environment: [String: String] = [:]
    ) async throws -> String {
        try await onOwnThread {
            try runBlocking(executable, arguments, asPostgres: asPostgres, environment: environment)
        }
    }

    /// Runs `executable` to its end with posix_spawn and waitpid (Foundation's `Process` did not
    /// notice the exit of `runuser` around `pg_ctl start`, whose server keeps running). Output
    /// goes to a file, not a pipe, which the started server would otherwise hold open.
    @discardableResult
    private static func runBlocking(
        _ executable: String, _ arguments: [String], asPostgres: Bool = runAsPostgres,
        environment: [String: String] = [:]
    ) throws -> String {
        var argv: [String]
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        if asPostgres {
            argv =
                ["/usr/sbin/runuser", "-u", "postgres", "--", "/usr/bin/env"]
                + environment.map { "\($0.key)=\($0.value)" } + [executable] + arguments
        } else {
            argv = [executable] + arguments
        }
        // From `/`, not the test's own folder: the postgres user may not be allowed into it.
        argv = ["/bin/sh", "-c", "cd / && exec \"$@\"", "sh"] + argv
        let outputPath = NSTemporaryDirectory() + "callout-pg-output-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in cArgs { free(p) }
            for p in cEnv { free(p) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, cArgs, cEnv)
        guard spawned == 0 else { throw Failure(description: "cannot start \(argv[0]): errno \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        // WIFEXITED && WEXITSTATUS == 0
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            throw Failure(description: "\(executable) \(arguments.first ?? "") failed (\(status)): \(text.suffix(800))")
        }
        return text
    }
}
