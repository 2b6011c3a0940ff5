import Foundation

/// A parsed formula: literal text interleaved with expressions from `{!...}` blocks.
enum FormulaSegment: Sendable {
    case text(String)
    case expression(FormulaNode)
}

/// One expression, resolved at parse time: functions, arities and merge fields are checked and
/// names are normalised, so evaluation only walks the tree.
indirect enum FormulaNode: Sendable {
    case literal(FormulaValue)
    /// `$User.<Field>`: the field as written and lowercased, for the case-insensitive lookup.
    case user(field: String, lowercased: String)
    /// `$Credential.<Name>.<Parameter>`.
    case credential(name: String, parameter: CredentialParameter)
    /// `$Named.Name` / `$Named.Url`.
    case named(NamedField)
    case call(FormulaFunction, [FormulaNode])
    /// `a & b + c - d ...`, evaluated left to right without recursion on the chain's length.
    case chain(FormulaNode, [ChainLink])
    /// `a = b` (`==`) when `equal`, `a <> b` (`!=`) otherwise.
    case compare(equal: Bool, FormulaNode, FormulaNode)
}

struct ChainLink: Sendable {
    var op: ChainOperator
    var operand: FormulaNode
}

enum ChainOperator: Sendable {
    /// `&`: joins as text (or as bytes when both sides are bytes).
    case ampersand
    /// `+`: adds when both sides are numbers; otherwise joins like `&`.
    case plus
    /// `-`: subtracts numbers; anything else is an evaluation error.
    case minus
}

enum NamedField: String, Sendable, CaseIterable {
    case name = "Name"
    case url = "Url"
}

/// Parameters `$Credential.<Name>.<Parameter>` may read. Names are case-insensitive.
enum CredentialParameter: String, Sendable, CaseIterable {
    case clientId = "ClientId"
    case principalName = "PrincipalName"
    case name = "Name"
    case label = "Label"
    case identityProviderUrl = "IdentityProviderUrl"
    case scope = "Scope"
    case tokenType = "TokenType"
    case accessToken = "AccessToken"
    case authorizationHeaderValue = "AuthorizationHeaderValue"

    /// Secret parameters are readable only where the context allows secrets.
    var isSecret: Bool { self == .accessToken || self == .authorizationHeaderValue }

    static let byLowercasedName: [String: CredentialParameter] = Dictionary(
        uniqueKeysWithValues: allCases.map { ($0.rawValue.lowercased(), $0) })
}

/// Functions of the language. Names are case-insensitive; arity is checked at parse time.
enum FormulaFunction: String, Sendable, CaseIterable {
    /// `BLANKVALUE(a, b)`: `a`, or `b` when `a` is blank (evaluated only then).
    case blankValue = "BLANKVALUE"
    /// `IF(condition, then, else)`: evaluates only the chosen branch.
    case `if` = "IF"
    /// `ISBLANK(a)`: true for empty text or bytes.
    case isBlank = "ISBLANK"
    /// `NOT(b)`, `AND(b, ...)`, `OR(b, ...)`: on booleans (or the text `true` / `false`).
    case not = "NOT"
    case and = "AND"
    case or = "OR"
    /// `UPPER(s)`, `LOWER(s)`, `TRIM(s)` (whitespace at both ends).
    case upper = "UPPER"
    case lower = "LOWER"
    case trim = "TRIM"
    /// `LEFT(s, n)`, `RIGHT(s, n)`: the first / last `n` characters; negative `n` means 0.
    case left = "LEFT"
    case right = "RIGHT"
    /// `LEN(s)`: the number of characters.
    case len = "LEN"
    /// `SUBSTITUTE(s, old, new)`: replaces every `old`.
    case substitute = "SUBSTITUTE"
    /// `CONTAINS(s, part)`, `BEGINS(s, prefix)`: booleans, case-sensitive.
    case contains = "CONTAINS"
    case begins = "BEGINS"
    /// `TEXT(x)`: the value as text.
    case text = "TEXT"
    /// `URLENCODE(s)`: RFC 3986 percent-encoding of every byte but the unreserved characters.
    case urlEncode = "URLENCODE"
    /// `BASE64ENCODE(x)`: standard base64 of the text's UTF-8 or of the bytes.
    case base64Encode = "BASE64ENCODE"
    /// `BASE64DECODE(s)`: the decoded text; padding optional; the result must be UTF-8.
    case base64Decode = "BASE64DECODE"
    /// `BLOB(s)`: the text's UTF-8 bytes.
    case blob = "BLOB"
    /// `HEX(x)`: lowercase hex of the text's UTF-8 or of the bytes.
    case hex = "HEX"
    /// `HASH('SHA-1' | 'SHA-256' | 'SHA-512', x)`: the digest, as bytes.
    case hash = "HASH"
    /// `HMAC('SHA-256' | 'SHA-512', data, key)`: the MAC, as bytes.
    case hmac = "HMAC"
    /// `NOW_EPOCH()`: `FormulaContext.now`, whole seconds since the Unix epoch.
    case nowEpoch = "NOW_EPOCH"
    /// `UUID()`: `FormulaContext.uuid`, lowercase.
    case uuid = "UUID"

    /// Accepted argument counts.
    var arity: ClosedRange<Int> {
        switch self {
        case .nowEpoch, .uuid: 0...0
        case .isBlank, .not, .upper, .lower, .trim, .len, .text, .urlEncode, .base64Encode,
            .base64Decode, .blob, .hex:
            1...1
        case .blankValue, .left, .right, .contains, .begins, .hash: 2...2
        case .if, .substitute, .hmac: 3...3
        case .and, .or: 1...FormulaFunction.maxVariadicArguments
        }
    }

    /// The arity in words, for error messages.
    var arityDescription: String {
        switch arity.count {
        case 1:
            arity.lowerBound == 1 ? "1 argument" : "\(arity.lowerBound) arguments"
        default:
            "at least \(arity.lowerBound) argument\(arity.lowerBound == 1 ? "" : "s")"
        }
    }

    /// True when the result depends on something besides the arguments (clock, randomness).
    var readsContext: Bool { self == .nowEpoch || self == .uuid }

    static let maxVariadicArguments = 64

    static let byName: [String: FormulaFunction] = Dictionary(
        uniqueKeysWithValues: allCases.map { ($0.rawValue, $0) })
}

/// Digest algorithms accepted by `HASH` (all three) and `HMAC` (not SHA-1), named
/// case-insensitively with or without the dash (`'SHA-256'`, `'sha256'`).
enum DigestAlgorithm: Sendable {
    case sha1, sha256, sha512

    init?(name: String, for function: FormulaFunction) {
        switch name.uppercased().replacingOccurrences(of: "-", with: "") {
        case "SHA1" where function == .hash: self = .sha1
        case "SHA256": self = .sha256
        case "SHA512": self = .sha512
        default: return nil
        }
    }

    /// The message for a name `init(name:for:)` refuses.
    static func refusal(for function: FormulaFunction) -> String {
        let allowed = function == .hash ? "'SHA-1', 'SHA-256' or 'SHA-512'" : "'SHA-256' or 'SHA-512'"
        return "\(function.rawValue) algorithm must be \(allowed)"
    }
}
