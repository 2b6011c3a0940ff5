import ArgumentParser
import CalloutCore
import Foundation
import NIOCore
import NIOPosix

@main
struct CalloutProxyCommand: AsyncParsableCommand {
    /// Runs Swift concurrency on NIO's event loop threads, so the data plane's tasks do not hop
    /// between NIO's threads and the default executor's on every request.
    static func main() async {
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        await main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "callout-proxy",
        abstract:
            "An authenticated-callout forward proxy: OAuth 2.0 client credentials with a JWT assertion, injected for your apps.",
        discussion: """
            Apps send plain HTTP to a named credential (http://Acme/path through HTTP_PROXY, or \
            http://proxy/callout:Acme/path); the proxy picks the caller's principal, injects an access \
            token and forwards over HTTPS, refreshing and retrying once on 401.

            Configuration: proxy.conf (TOML), or --config FILE, or $CALLOUT_PROXY_CONFIG.
            See proxy.conf.example for every key.
            """,
        version: CalloutProxyVersion.full,
        subcommands: [
            ServeCommand.self, CheckCommand.self, ExplainCommand.self, TokenCommand.self, AssertionCommand.self,
            DevIdPCommand.self, DemoCommand.self, VersionCommand.self,
        ]
    )
}

/// `--config FILE`, shared by every command that reads a configuration.
struct ConfigOption: ParsableArguments {
    @Option(name: .shortAndLong, help: "Configuration file (default: $CALLOUT_PROXY_CONFIG, else proxy.conf).")
    var config: String?

    var path: String { located.path }

    /// The file and where its name came from (`--config`, `$CALLOUT_PROXY_CONFIG`, the default).
    var located: (path: String, origin: ConfigLoader.Origin) {
        ConfigLoader.locate(option: config, environment: ProcessInfo.processInfo.environment)
    }

    /// Reads and validates the configuration file (not its keys).
    func load() throws(ConfigError) -> ProxyConfig {
        let (path, origin) = located
        return try ConfigLoader.load(path: path, origin: origin)
    }
}
