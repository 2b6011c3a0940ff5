import ArgumentParser
import CalloutBuildInfo
import CalloutCore

extension CalloutProxyVersion {
    /// The commit recorded at build time (see Package.swift), "unknown" when there was none.
    static var commit: String { String(cString: callout_build_commit()) }

    /// What `version` and `--version` print.
    static var full: String { describe(commit: commit) }
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print the version, the commit it was built from and the Swift compiler that built it.")

    func run() {
        print(CalloutProxyVersion.full)
    }
}
