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
  case blankValue = "BLANKVALUE"
  case `if` = "IF"
  case isBlank = "ISBLANK"
  case not = "NOT"
  case and = "AND"
  case or = "OR"
  case upper = "UPPER"
  case lower = "LOWER"
  case trim = "TRIM"
  case left = "LEFT"
  case right = "RIGHT"
  case len = "LEN"
  case substitute = "SUBSTITUTE"
  case contains = "CONTAINS"
  case begins = "BEGINS"
  case text = "TEXT"
  case urlEncode = "URLENCODE"
  case base64Encode = "BASE64ENCODE"
  case base64Decode = "BASE64DECODE"
  case blob = "BLOB"
  case hex = "HEX"
  case hash = "HASH"
  case hmac = "HMAC"
  case nowEpoch = "NOW_EPOCH"
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

/// Digest algorithms accepted by `HASH` and `HMAC`, named case-insensitively with or without
/// the dash (`'SHA-256'`, `'sha256'`).
enum DigestAlgorithm: Sendable {
  case sha1, sha256, sha512

  init?(name: String) {
    switch name.uppercased().replacingOccurrences(of: "-", with: "") {
    case "SHA1": self = .sha1
    case "SHA256": self = .sha256
    case "SHA512": self = .sha512
    default: return nil
    }
  }
}
