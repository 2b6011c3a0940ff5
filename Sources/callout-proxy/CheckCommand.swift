import ArgumentParser
import CalloutCore
import CalloutServer
import CalloutTokens
import Foundation

/// How `check` prints its findings.
enum CheckFormat: String, ExpressibleByArgument, CaseIterable {
    case human, json
}

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a configuration and its key files; print a summary or every problem.",
        discussion: """
            Exit status 0 when valid; 1 with one line per problem as FILE:LINE: key.path: message. \
            Warnings (a private key readable by group or others) do not change the status. \
            --format json prints {"valid", "problems", "issues", "warnings"} on standard output, each \
            issue as /reload returns it.
            """
    )

    @OptionGroup var options: ConfigOption

    @Option(help: "human or json.") var format: CheckFormat = .human

    @Flag(name: .shortAndLong, help: "Print nothing; only the exit status says whether the configuration is valid.")
    var quiet = false

    func run() throws {
        let (problems, warnings, config) = Self.examine(options)
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
