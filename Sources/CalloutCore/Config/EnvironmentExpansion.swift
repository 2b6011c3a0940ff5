/// `${VAR}` and `${VAR:-default}` in plain string values, so one file serves every environment.
///
/// Formula values (scope, JWT claims and header parameters, custom header values) are sent to
/// the identity provider or the endpoint and are never expanded: a secret reaches the proxy only
/// through a file key (`private_key_file`) or an `*_env` key. An expanded value that spans
/// lines or holds a PEM block is refused, and no message ever quotes a variable's value.
struct EnvironmentExpansion: Sendable {
    let environment: [String: String]

    /// Why a value could not be expanded; the description is a complete, value-free message.
    enum Failure: Error, Equatable, CustomStringConvertible {
        case unset(name: String)
        case unterminated
        case invalidName(String)
        case notPlainText(name: String)
        case inFormula

        var description: String {
            switch self {
            case .unset(let name):
                "environment variable \(name) is not set (give a default with ${\(name):-default})"
            case .unterminated:
                "'${' starts an environment variable but has no closing '}' (write $${ for a literal '${')"
            case .invalidName(let name):
                "'${\(name)}' is not an environment variable name (letters, digits and underscores, not starting with a digit)"
            case .notPlainText(let name):
                "the value of ${\(name)} spans lines or holds a PEM block: keys and secrets are read from files (private_key_file) and *_env keys, never expanded into the configuration"
            case .inFormula:
                "environment variables are not expanded in formula values, which are sent to the identity provider or endpoint (write $${ for a literal '${')"
            }
        }
    }

    /// `text` with every `${NAME}` and `${NAME:-default}` replaced and `$${` turned into `${`.
    /// `${NAME:-default}` uses the default when NAME is unset or empty.
    func expand(_ text: String) -> Result<String, Failure> {
        guard text.contains("${") else { return .success(text) }
        var out = ""
        var rest = Substring(text)
        while let dollar = rest.firstIndex(of: "$") {
            out += rest[..<dollar]
            let after = rest[rest.index(after: dollar)...]
            if after.hasPrefix("${") {
                out += "${"
                rest = after.dropFirst(2)
                continue
            }
            guard after.hasPrefix("{") else {
                out += "$"
                rest = after
                continue
            }
            guard let close = after.firstIndex(of: "}") else { return .failure(.unterminated) }
            let inner = after[after.index(after: after.startIndex)..<close]
            rest = after[after.index(after: close)...]
            let name: Substring
            let fallback: Substring?
            if let separator = inner.firstRange(of: ":-") {
                name = inner[..<separator.lowerBound]
                fallback = inner[separator.upperBound...]
            } else {
                name = inner
                fallback = nil
            }
            guard Self.isName(name) else { return .failure(.invalidName(String(name))) }
            let value: String
            if let set = environment[String(name)], !(set.isEmpty && fallback != nil) {
                value = set
            } else if let fallback {
                value = String(fallback)
            } else {
                return .failure(.unset(name: String(name)))
            }
            guard Self.isPlainText(value) else { return .failure(.notPlainText(name: String(name))) }
            out += value
        }
        out += rest
        return .success(out)
    }

    /// A formula value: `$${` gives a literal `${`; any other `${` is refused.
    func literal(_ text: String) -> Result<String, Failure> {
        guard text.contains("${") else { return .success(text) }
        var out = ""
        var rest = Substring(text)
        while let range = rest.firstRange(of: "${") {
            if range.lowerBound > rest.startIndex, rest[rest.index(before: range.lowerBound)] == "$" {
                out += rest[..<rest.index(before: range.lowerBound)] + "${"
                rest = rest[range.upperBound...]
                continue
            }
            return .failure(.inFormula)
        }
        out += rest
        return .success(out)
    }

    private static func isName(_ name: Substring) -> Bool {
        guard let first = name.first, first.isASCII, first.isLetter || first == "_" else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
    }

    private static func isPlainText(_ value: String) -> Bool {
        !value.contains("-----BEGIN") && !value.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }
}
