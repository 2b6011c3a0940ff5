import CalloutCore
import CalloutTokens

/// Configuration problems as JSON: the one shape `POST /reload` and `check --format json` share.
public enum ConfigIssueJSON {
    /// `[{"file","line","key_path","message","description"}, ...]`; `line` only when known.
    public static func array(_ issues: [ConfigIssue]) -> JSONValue {
        .array(
            issues.map { issue in
                var object: [String: JSONValue] = [:]
                object["file"] = .string(issue.file)
                if let line = issue.line { object["line"] = .integer(Int64(line)) }
                object["key_path"] = .string(issue.keyPath)
                object["message"] = .string(issue.message)
                object["description"] = .string(issue.description)
                return .object(object)
            })
    }

    /// What `check --format json` prints: `{"valid","problems","issues","warnings"}`.
    public static func report(problems: [ConfigIssue], warnings: [ConfigIssue]) -> JSONValue {
        var object: [String: JSONValue] = [:]
        object["valid"] = .bool(problems.isEmpty)
        object["problems"] = .integer(Int64(problems.count))
        object["issues"] = array(problems)
        object["warnings"] = array(warnings)
        return .object(object)
    }
}
