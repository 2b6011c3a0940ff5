import ArgumentParser
import CalloutCore
import CalloutTokens
import Foundation

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a configuration and its key files; print a summary or every problem.",
        discussion: "Exit status 0 when valid; 1 with one line per problem as FILE:LINE: key.path: message."
    )

    @OptionGroup var options: ConfigOption

    func run() throws {
        let config: ProxyConfig
        do {
            config = try ConfigLoader.load(path: options.path)
        } catch {
            printProblems(error.issues)
            throw ExitCode(1)
        }
        do {
            _ = try CredentialMaterials.load(config)
        } catch {
            printProblems(error.issues)
            throw ExitCode(1)
        }
        printWarnings(config)
        print(ConfigSummary.render(config))
    }

    private func printProblems(_ issues: [ConfigIssue]) {
        var stderr = StandardError()
        for issue in issues { print(issue.description, to: &stderr) }
        print("\(issues.count) problem\(issues.count == 1 ? "" : "s") found", to: &stderr)
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
