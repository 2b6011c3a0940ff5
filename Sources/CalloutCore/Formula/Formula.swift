/// A value that may embed `{!expression}` blocks, parsed once at load and evaluated per request.
///
/// Text outside blocks is literal; a value without blocks is plain text. Inside a block:
///
/// - string literals in single or double quotes; the only escapes are `\"`, `\'` and `\\`
///   (any other backslash escape is a parse error);
/// - number literals (`12`, `1.5`, `-3`); integers print without a fraction;
/// - `TRUE` and `FALSE`;
/// - `&` joins as text; `+` adds two numbers and otherwise joins as text; `-` subtracts two
///   numbers (left to right, one precedence level);
/// - `=` / `==` and `<>` / `!=` compare (numbers numerically, otherwise as text) and give a boolean;
/// - parentheses, and function calls `NAME(arg, ...)` with case-insensitive names:
///   `IF`, `BLANKVALUE`, `ISBLANK`, `NOT`, `AND`, `OR`, `UPPER`, `LOWER`, `TRIM`, `LEFT`, `RIGHT`,
///   `LEN`, `SUBSTITUTE`, `CONTAINS`, `BEGINS`, `TEXT`, `URLENCODE`, `BASE64ENCODE`,
///   `BASE64DECODE`, `BLOB`, `HEX`, `HASH`, `HMAC`, `NOW_EPOCH`, `UUID`;
/// - merge fields (names case-insensitive):
///   - `$User.<Field>`: the caller's user attribute; a missing attribute reads as empty text;
///   - `$Credential.<ExternalCredential>.<Parameter>`: `ClientId`, `PrincipalName`, `Name`,
///     `Label`, `IdentityProviderUrl`, `Scope`, `TokenType`, and the secrets `AccessToken` and
///     `AuthorizationHeaderValue`, which only evaluate where `FormulaContext.allowSecrets` is set;
///   - `$Named.Name` and `$Named.Url`: the named credential being called.
///
/// Escape: `\{!` in literal text gives a literal `{!` and starts no block. A backslash anywhere
/// else in literal text is itself literal (so `\\{!` gives `\{!`; to put a literal backslash right
/// before a block, write it as a string: `{!"\\"}`).
///
/// Limits: the source may hold at most `maxSourceLength` characters and nest parentheses and
/// calls at most `FormulaParser.maxDepth` deep (parse errors). Intermediate values are bounded
/// by 64 KiB and the final value by `FormulaContext.maxValueLength` characters; a final value
/// containing CR, LF or NUL is refused, so user attributes cannot inject header lines.
public struct Formula: Sendable, Hashable, CustomStringConvertible {
  public let source: String

  /// The longest source text accepted.
  public static let maxSourceLength = 3900

  /// The evaluated text when the formula does not depend on the context.
  private let constantText: String?
  private let segments: [FormulaSegment]
  /// The first secret merge field, named in the refusal when secrets are not allowed.
  private let secretField: String?

  /// External credential names referenced through `$Credential.<Name>.<Parameter>`.
  public let referencedCredentials: Set<String>
  /// User attribute names referenced through `$User.<Field>`, lowercased.
  public let referencedUserFields: Set<String>
  /// True when the formula reads `$Credential.<Name>.AccessToken` or `AuthorizationHeaderValue`.
  public let referencesSecrets: Bool
  /// True when the formula reads `$Named.Name` or `$Named.Url`.
  public let referencesNamedCredential: Bool

  public init(parsing text: String) throws(FormulaParseError) {
    if text.count > Self.maxSourceLength {
      throw FormulaParseError(
        column: Self.maxSourceLength + 1,
        message: "formula is longer than \(Self.maxSourceLength) characters")
    }
    var parser = FormulaParser(text)
    var segments = try parser.parseTemplate()
    source = text
    referencedCredentials = parser.referencedCredentials
    referencedUserFields = parser.referencedUserFields
    referencesSecrets = parser.firstSecretField != nil
    secretField = parser.firstSecretField
    referencesNamedCredential = parser.referencesNamedCredential

    let dependsOnContext =
      !parser.referencedCredentials.isEmpty || !parser.referencedUserFields.isEmpty
      || parser.referencesNamedCredential || parser.readsClockOrRandom
    var constant: String? = nil
    if !dependsOnContext {
      // Fold now; if folding fails the error is reported at evaluation like any other.
      constant = try? Self.render(segments, FormulaEvaluator(context: FormulaContext()))
      if let constant { segments = [.text(constant)] }
    }
    self.constantText = constant
    self.segments = segments
  }

  /// True when evaluation does not depend on the context: no `{!...}` block, or only blocks
  /// without merge fields, clock or UUID. Evaluation then returns the stored text.
  public var isConstant: Bool { constantText != nil }

  /// True when the formula reads any `$User.<Field>`.
  public var referencesUser: Bool { !referencedUserFields.isEmpty }

  public func evaluate(in context: FormulaContext) throws(FormulaEvaluationError) -> String {
    let value: String
    if let constantText {
      value = constantText
    } else {
      if let secretField, !context.allowSecrets {
        throw FormulaEvaluator.secretRefused(secretField)
      }
      value = try Self.render(segments, FormulaEvaluator(context: context))
    }
    try Self.checkFinal(value, maxLength: context.maxValueLength)
    return value
  }

  public var description: String { source }

  public static func == (lhs: Formula, rhs: Formula) -> Bool { lhs.source == rhs.source }
  public func hash(into hasher: inout Hasher) { hasher.combine(source) }

  private static func render(_ segments: [FormulaSegment], _ evaluator: FormulaEvaluator)
    throws(FormulaEvaluationError) -> String
  {
    if segments.count == 1, case .text(let text) = segments[0] { return text }
    var result = ""
    for segment in segments {
      switch segment {
      case .text(let text): result += text
      case .expression(let node): result += try evaluator.text(node)
      }
      if result.utf8.count > FormulaValue.maxIntermediateBytes {
        throw FormulaEvaluationError(
          "intermediate value is larger than \(FormulaValue.maxIntermediateBytes) bytes")
      }
    }
    return result
  }

  /// The final value must fit the limit and hold no CR, LF or NUL.
  private static func checkFinal(_ value: String, maxLength: Int) throws(FormulaEvaluationError) {
    if value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }) {
      throw FormulaEvaluationError("evaluated value contains a line break or NUL character")
    }
    // utf8.count >= count, so the character count is only taken when it might exceed.
    if value.utf8.count > maxLength && value.count > maxLength {
      throw FormulaEvaluationError(
        "evaluated value is longer than the limit of \(maxLength) characters")
    }
  }
}
