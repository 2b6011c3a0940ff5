import TOMLKit

/// Reads one TOML table, remembering which keys were asked for so the rest can be reported as
/// unknown (a typo must never silently disable a setting).
final class TOMLCursor {
    let table: TOMLTable
    let path: String
    private let report: ConfigReport
    private var known: [String] = []
    /// Required keys that are missing because an unknown key is a misspelling of them
    /// (misspelt key -> required key): reported once, as the unknown key.
    private var misspeltRequired: [String: String] = [:]

    init(_ table: TOMLTable, path: String, report: ConfigReport) {
        self.table = table
        self.path = path
        self.report = report
    }

    func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func issue(_ key: String?, _ message: String) {
        report.add(key.map(keyPath) ?? path, message)
    }

    private func value(_ key: String) -> (any TOMLValueConvertible)? {
        if !known.contains(key) { known.append(key) }
        guard table.contains(key: key) else { return nil }
        let v: (any TOMLValueConvertible)? = table[key]
        return v
    }

    func has(_ key: String) -> Bool { table.contains(key: key) }

    /// Whether `key` is present, marking it known without reading its value (for keys that are
    /// refused whatever they hold, such as a secret written in the file).
    func consume(_ key: String) -> Bool {
        if !known.contains(key) { known.append(key) }
        return table.contains(key: key)
    }

    /// A string value; `${VAR}` expanded unless `expanding` is false (formula values), see
    /// ``EnvironmentExpansion``.
    func string(_ key: String, expanding: Bool = true) -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v.string else {
            issue(key, "must be a string, not \(Self.describe(v.type))")
            return nil
        }
        return expanded(s, at: keyPath(key), expanding: expanding)
    }

    private func expanded(_ text: String, at keyPath: String, expanding: Bool) -> String? {
        switch expanding ? report.expansion.expand(text) : report.expansion.literal(text) {
        case .success(let value): return value
        case .failure(let failure):
            report.add(keyPath, failure.description)
            return nil
        }
    }

    func requiredString(_ key: String, expanding: Bool = true) -> String? {
        guard has(key) else {
            _ = value(key)
            if let typo = table.keys.sorted().first(where: { DidYouMean.suggestion(for: $0, among: [key]) != nil }) {
                misspeltRequired[typo] = key
            } else {
                issue(key, "is required")
            }
            return nil
        }
        return string(key, expanding: expanding)
    }

    func int(_ key: String) -> Int? {
        guard let v = value(key) else { return nil }
        guard let i = v.int else {
            issue(key, "must be an integer, not \(Self.describe(v.type))")
            return nil
        }
        return i
    }

    func int(_ key: String, in range: ClosedRange<Int>) -> Int? {
        guard let i = int(key) else { return nil }
        guard range.contains(i) else {
            issue(key, "must be between \(range.lowerBound) and \(range.upperBound), got \(i)")
            return nil
        }
        return i
    }

    func double(_ key: String, in range: ClosedRange<Double>) -> Double? {
        guard let v = value(key) else { return nil }
        guard let d = v.double ?? v.int.map(Double.init) else {
            issue(key, "must be a number, not \(Self.describe(v.type))")
            return nil
        }
        guard range.contains(d) else {
            issue(key, "must be between \(range.lowerBound) and \(range.upperBound), got \(d)")
            return nil
        }
        return d
    }

    func bool(_ key: String) -> Bool? {
        guard let v = value(key) else { return nil }
        guard let b = v.bool else {
            issue(key, "must be true or false, not \(Self.describe(v.type))")
            return nil
        }
        return b
    }

    func stringArray(_ key: String) -> [String]? {
        guard let v = value(key) else { return nil }
        guard let array = v.array else {
            issue(key, "must be an array of strings, not \(Self.describe(v.type))")
            return nil
        }
        var out: [String] = []
        for (i, element) in array.enumerated() {
            guard let s = element.string else {
                report.add("\(keyPath(key))[\(i)]", "must be a string, not \(Self.describe(element.type))")
                continue
            }
            if let value = expanded(s, at: "\(keyPath(key))[\(i)]", expanding: true) { out.append(value) }
        }
        return out
    }

    /// One string or an array of strings (`ca_file = "a.pem"` or `ca_file = ["a.pem", "b.pem"]`).
    func stringList(_ key: String) -> [String]? {
        guard let v = value(key) else { return nil }
        if v.array != nil { return stringArray(key) }
        guard v.string != nil else {
            issue(key, "must be a string or an array of strings, not \(Self.describe(v.type))")
            return nil
        }
        return string(key).map { [$0] }
    }

    func intArray(_ key: String) -> [Int]? {
        guard let v = value(key) else { return nil }
        guard let array = v.array else {
            issue(key, "must be an array of integers, not \(Self.describe(v.type))")
            return nil
        }
        var out: [Int] = []
        for (i, element) in array.enumerated() {
            guard let n = element.int else {
                report.add("\(keyPath(key))[\(i)]", "must be an integer, not \(Self.describe(element.type))")
                continue
            }
            out.append(n)
        }
        return out
    }

    /// A sub-table (`[a.b]` or an inline table).
    func table(_ key: String) -> TOMLCursor? {
        guard let v = value(key) else { return nil }
        guard let t = v.table else {
            issue(key, "must be a table, not \(Self.describe(v.type))")
            return nil
        }
        return TOMLCursor(t, path: keyPath(key), report: report)
    }

    /// An array of tables (`[[a.b]]`), each with its indexed path.
    func tables(_ key: String) -> [TOMLCursor] {
        guard let v = value(key) else { return [] }
        guard let array = v.array else {
            issue(key, "must be an array of tables ([[\(keyPath(key))]]), not \(Self.describe(v.type))")
            return []
        }
        var out: [TOMLCursor] = []
        for (i, element) in array.enumerated() {
            guard let t = element.table else {
                report.add("\(keyPath(key))[\(i)]", "must be a table, not \(Self.describe(element.type))")
                continue
            }
            out.append(TOMLCursor(t, path: "\(keyPath(key))[\(i)]", report: report))
        }
        return out
    }

    /// All entries as strings, in key order, for free-form tables (claims, user attributes).
    func stringEntries(expanding: Bool) -> [(String, String)] {
        var out: [(String, String)] = []
        for key in table.keys.sorted() {
            if let s = string(key, expanding: expanding) { out.append((key, s)) }
        }
        return out
    }

    /// Reports every key that no reader asked for, with the closest known key when there is one.
    func rejectUnknownKeys() {
        for (typo, required) in misspeltRequired.sorted(by: { $0.key < $1.key }) where known.contains(typo) {
            issue(required, "is required")
        }
        for key in table.keys.sorted() where !known.contains(key) {
            var message = "unknown key"
            if let required = misspeltRequired[key] {
                message += "; did you mean '\(required)'? (\(required) is required)"
            } else if let guess = DidYouMean.suggestion(for: key, among: known) {
                message += "; did you mean '\(guess)'?"
            } else if !known.isEmpty {
                message += " (known keys: \(known.sorted().joined(separator: ", ")))"
            }
            report.add(keyPath(key), message)
        }
    }

    private static func describe(_ type: TOMLType) -> String {
        switch type {
        case .string: "a string"
        case .int: "an integer"
        case .double: "a floating-point number"
        case .bool: "a boolean"
        case .array: "an array"
        case .table: "a table"
        case .date: "a date"
        case .time: "a time"
        case .dateTime: "a date-time"
        @unknown default: "a value of another type"
        }
    }
}

/// Collects issues with their lines as the loader works.
final class ConfigReport {
    let file: String
    let index: TOMLLineIndex
    let expansion: EnvironmentExpansion
    private(set) var issues: [ConfigIssue] = []
    /// Findings that do not stop the configuration from loading.
    private(set) var warnings: [ConfigIssue] = []

    init(file: String, index: TOMLLineIndex, expansion: EnvironmentExpansion) {
        self.file = file
        self.index = index
        self.expansion = expansion
    }

    func add(_ keyPath: String, _ message: String) {
        issues.append(ConfigIssue(file: file, line: index.line(for: keyPath), keyPath: keyPath, message: message))
    }

    func warn(_ keyPath: String, _ message: String) {
        warnings.append(ConfigIssue(file: file, line: index.line(for: keyPath), keyPath: keyPath, message: message))
    }
}
