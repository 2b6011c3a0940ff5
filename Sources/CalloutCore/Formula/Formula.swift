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
/// - `=` / `==` and `<>` / `!=` compare (numbers numerically, otherwise as case-sensitive text)
///   and give a boolean, printed as `true` / `false`;
/// - `HASH`, `HMAC` and `BLOB` give bytes; bytes join with bytes as bytes and become text
///   only when they are valid UTF-8 (otherwise use `BASE64ENCODE` or `HEX`);
/// - parentheses, and function calls `NAME(arg, ...)` with case-insensitive names and arity
///   checked at parse time (see `FormulaFunction`):
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
/// calls at most `maxNestingDepth` deep (parse errors). Intermediate values are bounded by
/// `maxIntermediateBytes` and the final value by `FormulaContext.maxValueLength` characters
/// (an error, never truncation); a final value containing CR, LF or NUL is refused, so user
/// attributes cannot inject header lines. Evaluation errors never quote values or inputs.
public struct Formula: Sendable, Hashable, CustomStringConvertible {
    public let source: String

    /// The longest source text accepted, in characters.
    public static let maxSourceLength = 3900
    /// The deepest nesting of parentheses and function calls accepted.
    public static let maxNestingDepth = 64
    /// The largest value (UTF-8 bytes, or raw bytes) evaluation builds along the way.
    public static let maxIntermediateBytes = 65_536

    /// The evaluated text when the formula does not depend on the context, checked once.
    private let constant: ConstantText?
    private let segments: [FormulaSegment]
    /// The first secret merge field, named in the refusal when secrets are not allowed.
    private let secretField: String?

    /// External credential names referenced through `$Credential.<Name>.<Parameter>`.
    public let referencedCredentials: Set<String>
    /// User attribute names referenced through `$User.<Field>`, lowercased.
    public let referencedUserFields: Set<String>
    /// Parameter names (as `$Credential.<Name>.<Parameter>` spells them canonically, e.g.
    /// `ClientId`) read from any external credential.
    public let referencedCredentialParameters: Set<String>
    /// True when the formula calls `NOW_EPOCH()` or `UUID()`: its value differs per evaluation.
    public let readsClockOrRandom: Bool
    /// True when the formula reads `$Credential.<Name>.AccessToken` or `AuthorizationHeaderValue`.
    /// Such a formula fails to evaluate, whichever branch is taken, unless the context allows
    /// secrets.
    public let referencesSecrets: Bool
    /// True when the formula reads `$Named.Name` or `$Named.Url`.
    public let referencesNamedCredential: Bool
    /// False when a secret merge field is an argument or operand (refused for ``FormulaUse/callerWritten``).
    public let placesSecretsWhole: Bool

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
        referencedCredentialParameters = parser.referencedCredentialParameters
        readsClockOrRandom = parser.readsClockOrRandom
        referencesSecrets = parser.firstSecretField != nil
        secretField = parser.firstSecretField
        referencesNamedCredential = parser.referencesNamedCredential
        placesSecretsWhole = segments.placesSecretsWhole

        let dependsOnContext =
            !parser.referencedCredentials.isEmpty || !parser.referencedUserFields.isEmpty
            || parser.referencesNamedCredential || parser.readsClockOrRandom
        var constant: ConstantText? = nil
        // Fold now; if folding fails the error is reported at evaluation like any other.
        if !dependsOnContext,
            let text = try? Self.render(segments, FormulaEvaluator(context: FormulaContext()))
        {
            constant = ConstantText(text)
            segments = [.text(text)]
        }
        self.constant = constant
        self.segments = segments
    }

    /// True when evaluation does not depend on the context: no `{!...}` block, or only blocks
    /// without merge fields, clock or UUID. Evaluation then returns the stored text.
    public var isConstant: Bool { constant != nil }

    /// The value of a constant formula that evaluates without error under `maxValueLength`,
    /// without building a context; `nil` otherwise (then ``evaluate(in:)`` says why).
    public func constantValue(maxValueLength: Int) -> String? {
        guard let constant, !constant.hasLineBreak, constant.length <= maxValueLength else { return nil }
        return constant.text
    }

    /// True when the formula reads any `$User.<Field>`.
    public var referencesUser: Bool { !referencedUserFields.isEmpty }

    public func evaluate(in context: FormulaContext) throws(FormulaEvaluationError) -> String {
        if let constant {
            if constant.hasLineBreak { throw Self.lineBreak }
            if constant.length > context.maxValueLength {
                throw Self.tooLong(context.maxValueLength)
            }
            return constant.text
        }
        if let secretField, !context.allowSecrets {
            throw FormulaEvaluator.secretRefused(secretField)
        }
        if context.use == .callerWritten, !placesSecretsWhole {
            throw FormulaEvaluationError(
                "a formula in the request may use \(secretField ?? "a secret") only as a whole {!...} block, not inside a function or comparison"
            )
        }
        let value = try Self.render(segments, FormulaEvaluator(context: context))
        if Self.hasLineBreak(value) { throw Self.lineBreak }
        // utf8.count >= count, so characters are only counted when the value might be too long.
        if value.utf8.count > context.maxValueLength && value.count > context.maxValueLength {
            throw Self.tooLong(context.maxValueLength)
        }
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

    /// CR, LF and NUL would let a value split or end a header line.
    static func hasLineBreak(_ value: String) -> Bool {
        value.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }
    }

    private static let lineBreak = FormulaEvaluationError(
        "evaluated value contains a line break or NUL character")

    private static func tooLong(_ limit: Int) -> FormulaEvaluationError {
        FormulaEvaluationError("evaluated value is longer than the limit of \(limit) characters")
    }
}

/// A context-free formula's text with the facts evaluation checks, computed once.
private struct ConstantText: Sendable {
    let text: String
    let length: Int
    let hasLineBreak: Bool

    init(_ text: String) {
        self.text = text
        length = text.count
        hasLineBreak = Formula.hasLineBreak(text)
    }
}
