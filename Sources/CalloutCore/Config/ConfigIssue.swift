/// One problem found in a configuration file, printed as `FILE:LINE: key.path: message`.
public struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    /// 1-based line, where the key could be located in the text.
    public var line: Int?
    /// Where the value lives, e.g. `external_credential[0].principal[1].sequence_number`.
    public var keyPath: String
    public var message: String

    public init(file: String, line: Int?, keyPath: String, message: String) {
        self.file = file
        self.line = line
        self.keyPath = keyPath
        self.message = message
    }

    public var description: String {
        let location = line.map { "\(file):\($0)" } ?? file
        return keyPath.isEmpty ? "\(location): \(message)" : "\(location): \(keyPath): \(message)"
    }
}

/// A configuration that failed to load: every problem at once.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var issues: [ConfigIssue]

    public init(issues: [ConfigIssue]) { self.issues = issues }

    /// The same problems in the order they are written in the file: by line, then key path;
    /// problems without a line last.
    public init(inLineOrder issues: [ConfigIssue]) {
        self.issues = issues.sorted { ($0.line ?? .max, $0.keyPath) < ($1.line ?? .max, $1.keyPath) }
    }

    public var description: String { issues.map(\.description).joined(separator: "\n") }
}
