import Foundation
import TOMLKit

/// Reads `proxy.conf` (TOML) into a validated ``ProxyConfig``, reporting every problem at once.
public enum ConfigLoader {
    /// Where `check`, `serve` and the other commands look when `--config` is not given.
    public static func defaultPath(environment: [String: String]) -> String {
        environment["CALLOUT_PROXY_CONFIG"] ?? "proxy.conf"
    }

    /// Reads and validates the file at `path`. Relative key and CA paths inside it are resolved
    /// against the file's folder.
    public static func load(path: String) throws(ConfigError) -> ProxyConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "does not exist"
            throw ConfigError(issues: [
                ConfigIssue(file: path, line: nil, keyPath: "", message: "configuration file \(reason)")
            ])
        }
        let folder = (path as NSString).deletingLastPathComponent
        return try load(text: text, file: path, baseDirectory: folder.isEmpty ? "." : folder)
    }

    /// Validates configuration text. `file` only labels the messages.
    public static func load(text: String, file: String = "<memory>", baseDirectory: String = ".")
        throws(ConfigError) -> ProxyConfig
    {
        if let line = invalidTableHeaderLine(text) {
            throw ConfigError(issues: [
                ConfigIssue(
                    file: file, line: line, keyPath: "",
                    message:
                        "TOML syntax error: a table header must start with a bare key (A-Z a-z 0-9 _ -) or a quoted key"
                )
            ])
        }
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigError(issues: [
                ConfigIssue(
                    file: file, line: error.source.begin.line, keyPath: "",
                    message: "TOML syntax error at column \(error.source.begin.column): \(error.description)")
            ])
        } catch {
            throw ConfigError(issues: [
                ConfigIssue(file: file, line: nil, keyPath: "", message: "TOML syntax error: \(error)")
            ])
        }
        let report = ConfigReport(file: file, index: TOMLLineIndex(text: text))
        let builder = ConfigBuilder(report: report, baseDirectory: baseDirectory)
        var config = builder.build(TOMLCursor(root, path: "", report: report), file: file)
        if !report.issues.isEmpty {
            throw ConfigError(
                issues: report.issues.sorted { ($0.line ?? .max, $0.keyPath) < ($1.line ?? .max, $1.keyPath) })
        }
        config.sourceLines = report.index.lines
        config.warnings = report.warnings
        return config
    }

    /// The line of a table header (`[x]`, `[[x]]`) whose first key does not start with a bare
    /// key character (A-Z a-z 0-9 _ -), a quote or the closing `]`: `[é]`, `[[[x]]]`, `[=]`, a
    /// lone `[`. Such a header is invalid TOML, but toml++ inside TOMLKit asserts on it instead
    /// of reporting it, aborting any build with assertions on; so it is reported here, before
    /// parsing. Line-based: a line inside a multi-line string or array that looks like such a
    /// header is reported too (no valid configuration has one).
    static func invalidTableHeaderLine(_ text: String) -> Int? {
        var line = 1
        var scalars = text.unicodeScalars[...]
        while !scalars.isEmpty {
            let end = scalars.firstIndex(of: "\n") ?? scalars.endIndex
            var rest = scalars[..<end].drop { $0 == " " || $0 == "\t" || $0 == "\u{FEFF}" }
            if rest.first == "[" {
                rest = rest.dropFirst()
                if rest.first == "[" { rest = rest.dropFirst() }
                rest = rest.drop { $0 == " " || $0 == "\t" }
                guard let first = rest.first, first.isASCII,
                    first.properties.isAlphabetic || ("0"..."9").contains(first)
                        || "_-\"']".unicodeScalars.contains(first)
                else { return line }
            }
            scalars = end == scalars.endIndex ? scalars[end...] : scalars[scalars.index(after: end)...]
            line += 1
        }
        return nil
    }
}
