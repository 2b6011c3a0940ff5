import ArgumentParser
import CalloutCore
import CalloutServer
import CalloutTokens
import Logging

struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract:
            "Dry run: show how a request would be routed, who the caller is, which principal and headers — without calling anything.",
        discussion: """
            Example: callout-proxy explain -H 'X-Callout-Permission-Sets: Acme_Readers' GET http://Acme/items?x=1
            """)

    @OptionGroup var options: ConfigOption

    @Option(name: [.customShort("H"), .customLong("header")], help: "A request header, 'Name: value' (repeatable).")
    var headers: [String] = []

    @Option(help: "The caller's address (decides whether identity headers are trusted).")
    var from: String = "127.0.0.1"

    @Argument(help: "HTTP method.") var method: String
    @Argument(help: "http://Alias/path, /callout:Alias/path, or a path with -H 'Host: Alias'.") var url: String

    func run() throws {
        let (config, materials) = try loadOrExit(options)
        printWarnings(config)
        var parsed: [(String, String)] = []
        for h in headers {
            guard let colon = h.firstIndex(of: ":") else {
                throw ValidationError("header '\(h)' must look like 'Name: value'")
            }
            parsed.append(
                (
                    String(h[..<colon]).trimmingCharacters(in: .whitespaces),
                    String(h[h.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
                ))
        }
        let runtime = try RuntimeConfiguration(config, materials: materials)
        let tokens = TokenPreparation(config: config, materials: materials)
        let explanation = CalloutExplainer.explain(
            snapshot: runtime.current, tokens: tokens, method: method.uppercased(), url: url, headers: parsed,
            peer: from)
        print(explanation.text)
        if explanation.problem != nil { throw ExitCode(2) }
    }
}
