import ArgumentParser
import CalloutCore
import CalloutServer
import CalloutTokenStore
import CalloutTokens
import Foundation
import NIOPosix

/// How `check` prints its findings.
enum CheckFormat: String, ExpressibleByArgument, CaseIterable {
    case human, json
}

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a configuration and its key files; print a summary or every problem.",
        discussion: """
            Exit status 0 when valid; 1 with one line per problem as FILE:LINE: key.path: message. \
            Warnings (a private key readable by group or others) do not change the status. \
            --format json prints {"valid", "problems", "issues", "warnings"} on standard output, each \
            issue as /reload returns it. --token-store also connects to the [token_store] (its \
            password and key read from the environment as serve reads them) and checks its table; \
            nothing is written.
            """
    )

    @OptionGroup var options: ConfigOption

    @Option(help: "human or json.") var format: CheckFormat = .human

    @Flag(name: .shortAndLong, help: "Print nothing; only the exit status says whether the configuration is valid.")
    var quiet = false

    @Flag(help: "Also connect to the [token_store] and check its table (nothing is written).")
    var tokenStore = false

    func run() async throws {
        var (problems, warnings, config) = Self.examine(options)
        if tokenStore, problems.isEmpty, let config {
            if let store = config.tokenStore {
                let result = await TokenStoreService.probe(
                    store, environment: ProcessInfo.processInfo.environment, timeout: .seconds(10),
                    eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
                let place = "\(store.host):\(store.port)/\(store.database)"
                switch result {
                case .ready:
                    if !quiet, format == .human { print("token store: \(place), table \(store.table) ready") }
                case .schema(let message):
                    // serve makes a missing table; a different one is a problem.
                    let issue = config.issue("token_store.table", message)
                    if message.hasSuffix("does not exist") { warnings.append(issue) } else { problems.append(issue) }
                case .unreachable(let message):
                    problems.append(config.issue("token_store.url", "\(place): \(message)"))
                case .unusable(let message):
                    problems.append(ConfigIssue(file: config.sourceFile, line: nil, keyPath: "", message: message))
                }
            } else {
                warnings.append(config.issue("token_store", "--token-store: the configuration has no [token_store]"))
            }
        }
        if !quiet {
            switch format {
            case .json:
                print(ConfigIssueJSON.report(problems: problems, warnings: warnings).jsonText)
            case .human:
                var stderr = StandardError()
                for warning in warnings { print("warning: \(warning.description)", to: &stderr) }
                if let config, problems.isEmpty {
                    print(ConfigSummary.render(config))
                } else {
                    for issue in problems { print(issue.description, to: &stderr) }
                    print("\(problems.count) problem\(problems.count == 1 ? "" : "s") found", to: &stderr)
                }
            }
        }
        if !problems.isEmpty { throw ExitCode(1) }
    }

    /// The configuration's problems (the file's first; the keys' only once the file is valid)
    /// and warnings.
    static func examine(_ options: ConfigOption) -> (
        problems: [ConfigIssue], warnings: [ConfigIssue], config: ProxyConfig?
    ) {
        let config: ProxyConfig
        do {
            config = try options.load()
        } catch {
            return (error.issues, [], nil)
        }
        let warnings = config.warnings + KeyFilePermissions.warnings(config)
        do {
            _ = try CredentialMaterials.load(config)
        } catch {
            return (error.issues, warnings, config)
        }
        return ([], warnings, config)
    }
}

/// Findings that do not stop the configuration from loading, one `warning:` line each on stderr.
func printWarnings(_ config: ProxyConfig) {
    var stderr = StandardError()
    for warning in config.warnings { print("warning: \(warning.description)", to: &stderr) }
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        FileHandle.standardError.write(Data(string.utf8))
    }
}
