import Foundation
import TOMLKit

/// Reads `proxy.conf` (TOML) into a validated ``ProxyConfig``, reporting every problem at once.
public enum ConfigLoader {
    /// Where the configuration path came from, so a missing file can say how to give another.
    public enum Origin: Sendable, Equatable {
        /// `--config FILE`.
        case option
        /// `$CALLOUT_PROXY_CONFIG`.
        case environment
        /// Neither: `proxy.conf` in the working directory.
        case defaultFile
    }

    /// Where `check`, `serve` and the other commands look when `--config` is not given.
    public static func defaultPath(environment: [String: String]) -> String {
        locate(option: nil, environment: environment).path
    }

    /// The file to read: `--config`, else `$CALLOUT_PROXY_CONFIG`, else `proxy.conf`.
    public static func locate(option: String?, environment: [String: String]) -> (path: String, origin: Origin) {
        if let option { return (option, .option) }
        if let path = environment["CALLOUT_PROXY_CONFIG"] { return (path, .environment) }
        return ("proxy.conf", .defaultFile)
    }

    /// Reads and validates the file at `path`. Relative key and CA paths inside it are resolved
    /// against the file's folder, and shown resolved in problems. `${VAR}` and `${VAR:-default}`
    /// in plain string values are expanded from `environment`.
    public static func load(
        path: String, origin: Origin = .option,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigError) -> ProxyConfig {
        let absolute = absolutePath(path, workingDirectory: FileManager.default.currentDirectoryPath)
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let exists = FileManager.default.fileExists(atPath: path)
            throw ConfigError(issues: [
                ConfigIssue(
                    file: path, line: nil, keyPath: "",
                    message: unreadableFileMessage(absolutePath: absolute, exists: exists, origin: origin))
            ])
        }
        let folder = (absolute as NSString).deletingLastPathComponent
        return try load(text: text, file: path, baseDirectory: folder, environment: environment)
    }

    /// What a configuration file that cannot be read is reported as: where it was looked for and
    /// how to name another.
    static func unreadableFileMessage(absolutePath: String, exists: Bool, origin: Origin) -> String {
        let given =
            switch origin {
            case .option: "given with --config"
            case .environment: "given by $CALLOUT_PROXY_CONFIG"
            case .defaultFile:
                "the default, proxy.conf in the working directory; name another with --config FILE or $CALLOUT_PROXY_CONFIG"
            }
        return exists
            ? "configuration file cannot be read: \(absolutePath) (\(given))"
            : "configuration file not found: looked for \(absolutePath) (\(given))"
    }

    /// `path` made absolute against `workingDirectory`, with `.` and `..` removed.
    static func absolutePath(_ path: String, workingDirectory: String) -> String {
        let joined = path.hasPrefix("/") ? path : (workingDirectory as NSString).appendingPathComponent(path)
        return URL(fileURLWithPath: joined).standardized.path
    }

    /// Validates configuration text. `file` only labels the messages.
    public static func load(
        text: String, file: String = "<memory>", baseDirectory: String = ".", environment: [String: String] = [:]
    ) throws(ConfigError) -> ProxyConfig {
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
            let line = error.source.begin.line
            let lineText = text.split(separator: "\n", omittingEmptySubsequences: false).dropFirst(line - 1).first
            let message =
                lineText.flatMap { unterminatedStringMessage(String($0)) }
                ?? "TOML syntax error at column \(error.source.begin.column): \(error.description)"
            throw ConfigError(issues: [ConfigIssue(file: file, line: line, keyPath: "", message: message)])
        } catch {
            throw ConfigError(issues: [
                ConfigIssue(file: file, line: nil, keyPath: "", message: "TOML syntax error: \(error)")
            ])
        }
        let report = ConfigReport(
            file: file, index: TOMLLineIndex(text: text), expansion: EnvironmentExpansion(environment: environment))
        let builder = ConfigBuilder(report: report, baseDirectory: baseDirectory)
        var config = builder.build(TOMLCursor(root, path: "", report: report), file: file)
        if !report.issues.isEmpty {
            throw ConfigError(inLineOrder: report.issues)
        }
        config.sourceLines = report.index.lines
        config.warnings = report.warnings
        return config
    }

    /// The message for a line whose last `"` or `'` string is never closed, which toml++
    /// reports as a control character (the line break) in a string; nil for other lines.
    static func unterminatedStringMessage(_ line: String) -> String? {
        if line.contains("\"\"\"") || line.contains("'''") { return nil }
        guard let (quote, opened) = TOMLLineIndex.scanOutsideStrings(line, { $0 != "#" }) else { return nil }
        return
            "TOML syntax error at column \(opened): the string started with \(quote) is not closed on this line (a string ends on the line it starts; use \(String(repeating: quote, count: 3)) for text over several lines)"
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
