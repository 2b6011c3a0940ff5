/// Recursive-descent parser for formula text. Nesting (parentheses and calls) is bounded by
/// `maxDepth`, so hostile input cannot exhaust the stack; operator chains are loops.
///
/// Grammar inside a block:
///
///     expression := chain [ ("=" | "==" | "<>" | "!=") chain ]
///     chain      := primary { ("&" | "+" | "-") primary }
///     primary    := string | ["-"] number | TRUE | FALSE | mergeField
///                 | NAME "(" [ expression { "," expression } ] ")" | "(" expression ")"
struct FormulaParser {
    static let maxDepth = Formula.maxNestingDepth

    private var lexer: FormulaLexer
    private var lookahead: FormulaToken?
    private var depth = 0
    /// Column of the `{!` being parsed, for "unterminated block" errors.
    private var blockColumn = 1

    private(set) var referencedCredentials: Set<String> = []
    private(set) var referencedCredentialParameters: Set<String> = []
    private(set) var referencedUserFields: Set<String> = []
    /// The first secret merge field read, as `$Credential.<Name>.<Parameter>`.
    private(set) var firstSecretField: String?
    private(set) var referencesNamedCredential = false
    /// True when some expression reads the clock or generates a UUID.
    private(set) var readsClockOrRandom = false

    init(_ source: String) {
        lexer = FormulaLexer(chars: Array(source), position: 0)
    }

    /// Splits the source into literal text and parsed `{!...}` blocks.
    mutating func parseTemplate() throws(FormulaParseError) -> [FormulaSegment] {
        let chars = lexer.chars
        var segments: [FormulaSegment] = []
        var literal = ""
        var index = 0
        while index < chars.count {
            let char = chars[index]
            if char == "\\", index + 2 < chars.count, chars[index + 1] == "{", chars[index + 2] == "!" {
                literal += "{!"
                index += 3
            } else if char == "{", index + 1 < chars.count, chars[index + 1] == "!" {
                if !literal.isEmpty {
                    segments.append(.text(literal))
                    literal = ""
                }
                blockColumn = FormulaLexer.column(index)
                lexer.position = index + 2
                lookahead = nil
                segments.append(.expression(try parseBlock()))
                index = lexer.position
            } else {
                literal.append(char)
                index += 1
            }
        }
        if !literal.isEmpty { segments.append(.text(literal)) }
        return segments
    }

    private mutating func parseBlock() throws(FormulaParseError) -> FormulaNode {
        if try peek().kind == .closeBrace {
            throw FormulaParseError(column: blockColumn, message: "empty {!} block")
        }
        let node = try parseExpression()
        let closing = try next()
        switch closing.kind {
        case .closeBrace: return node
        case .end: throw unterminated()
        default:
            throw FormulaParseError(column: closing.column, message: "expected an operator or '}'")
        }
    }

    private mutating func parseExpression() throws(FormulaParseError) -> FormulaNode {
        let lhs = try parseChain()
        let op = try peek()
        guard op.kind == .equal || op.kind == .notEqual else { return lhs }
        _ = try next()
        let rhs = try parseChain()
        let after = try peek()
        if after.kind == .equal || after.kind == .notEqual {
            throw FormulaParseError(
                column: after.column, message: "comparisons cannot be chained; use parentheses")
        }
        return .compare(equal: op.kind == .equal, lhs, rhs)
    }

    private mutating func parseChain() throws(FormulaParseError) -> FormulaNode {
        let first = try parsePrimary()
        var links: [ChainLink] = []
        while true {
            let op: ChainOperator
            switch try peek().kind {
            case .ampersand: op = .ampersand
            case .plus: op = .plus
            case .minus: op = .minus
            default: return links.isEmpty ? first : .chain(first, links)
            }
            _ = try next()
            links.append(ChainLink(op: op, operand: try parsePrimary()))
        }
    }

    private mutating func parsePrimary() throws(FormulaParseError) -> FormulaNode {
        let token = try next()
        switch token.kind {
        case .string(let string): return .literal(.text(string))
        case .number(let number): return .literal(.number(number))
        case .minus:
            // Only a number literal may follow, so a run of signs cannot recurse.
            let operand = try next()
            guard case .number(let number) = operand.kind else {
                if operand.kind == .end { throw unterminated() }
                throw FormulaParseError(column: operand.column, message: "expected a number after '-'")
            }
            return .literal(.number(-number))
        case .mergeField(let parts): return try resolveMergeField(parts, column: token.column)
        case .leftParen:
            try enter(at: token.column)
            let inner = try parseExpression()
            try expect(.rightParen, "expected ')'")
            depth -= 1
            return inner
        case .identifier(let name):
            if try peek().kind == .leftParen { return try parseCall(name: name, column: token.column) }
            switch name.uppercased() {
            case "TRUE": return .literal(.bool(true))
            case "FALSE": return .literal(.bool(false))
            default:
                throw FormulaParseError(
                    column: token.column,
                    message:
                        "unknown name '\(name)'; call functions with parentheses and start merge fields with '$'"
                )
            }
        case .end: throw unterminated()
        default:
            throw FormulaParseError(column: token.column, message: "expected a value")
        }
    }

    private mutating func parseCall(name: String, column: Int) throws(FormulaParseError)
        -> FormulaNode
    {
        guard let function = FormulaFunction.byName[name.uppercased()] else {
            // Names are short: a guess more than a third of the name away is noise (FOO is not NOT).
            let guess = DidYouMean.suggestion(for: name.uppercased(), among: FormulaFunction.byName.keys.sorted())
                .flatMap { DidYouMean.editDistance(name.uppercased(), $0) <= max(1, name.count / 3) ? $0 : nil }
            throw FormulaParseError(
                column: column, message: "unknown function '\(name)'" + (guess.map { "; did you mean \($0)?" } ?? ""))
        }
        let open = try next()  // "("
        try enter(at: open.column)
        var arguments: [FormulaNode] = []
        if try peek().kind == .rightParen {
            _ = try next()
        } else {
            while true {
                if arguments.count == FormulaFunction.maxVariadicArguments {
                    throw FormulaParseError(
                        column: column, message: "too many arguments to \(function.rawValue)")
                }
                arguments.append(try parseExpression())
                let separator = try next()
                if separator.kind == .rightParen { break }
                if separator.kind == .end { throw unterminated() }
                guard separator.kind == .comma else {
                    throw FormulaParseError(column: separator.column, message: "expected ',' or ')'")
                }
            }
        }
        depth -= 1
        guard function.arity.contains(arguments.count) else {
            throw FormulaParseError(
                column: column,
                message: "\(function.rawValue) takes \(function.arityDescription), got \(arguments.count)")
        }
        try checkAlgorithm(function, arguments, column: column)
        if function.readsContext { readsClockOrRandom = true }
        return .call(function, arguments)
    }

    /// A literal algorithm name for HASH / HMAC is checked now rather than per request.
    private func checkAlgorithm(_ function: FormulaFunction, _ arguments: [FormulaNode], column: Int)
        throws(FormulaParseError)
    {
        guard function == .hash || function == .hmac, case .literal(let value) = arguments[0] else {
            return
        }
        guard case .text(let name) = value, DigestAlgorithm(name: name, for: function) != nil else {
            throw FormulaParseError(column: column, message: DigestAlgorithm.refusal(for: function))
        }
    }

    private mutating func resolveMergeField(_ parts: [FormulaNamePart], column: Int)
        throws(FormulaParseError)
        -> FormulaNode
    {
        let kind = parts[0]
        switch kind.name.lowercased() {
        case "user":
            guard parts.count == 2 else {
                throw FormulaParseError(column: column, message: "expected $User.<Field>")
            }
            let lowercased = parts[1].name.lowercased()
            referencedUserFields.insert(lowercased)
            return .user(field: parts[1].name, lowercased: lowercased)
        case "credential":
            guard parts.count == 3 else {
                throw FormulaParseError(
                    column: column, message: "expected $Credential.<ExternalCredential>.<Parameter>")
            }
            guard let parameter = CredentialParameter.byLowercasedName[parts[2].name.lowercased()] else {
                let known = CredentialParameter.allCases.map(\.rawValue).joined(separator: ", ")
                throw FormulaParseError(
                    column: parts[2].column,
                    message: "unknown credential parameter '\(parts[2].name)'; expected one of \(known)")
            }
            referencedCredentials.insert(parts[1].name)
            referencedCredentialParameters.insert(parameter.rawValue)
            if parameter.isSecret, firstSecretField == nil {
                firstSecretField = "$Credential.\(parts[1].name).\(parameter.rawValue)"
            }
            return .credential(name: parts[1].name, parameter: parameter)
        case "named":
            guard parts.count == 2,
                let field = NamedField.allCases.first(where: {
                    $0.rawValue.lowercased() == parts[1].name.lowercased()
                })
            else {
                throw FormulaParseError(column: column, message: "expected $Named.Name or $Named.Url")
            }
            referencesNamedCredential = true
            return .named(field)
        default:
            throw FormulaParseError(
                column: kind.column,
                message: "unknown merge field '$\(kind.name)'; expected $User, $Credential or $Named")
        }
    }

    private mutating func enter(at column: Int) throws(FormulaParseError) {
        depth += 1
        if depth > Self.maxDepth {
            throw FormulaParseError(
                column: column, message: "nesting is deeper than \(Self.maxDepth) levels")
        }
    }

    private mutating func expect(_ kind: FormulaToken.Kind, _ message: String)
        throws(FormulaParseError)
    {
        let token = try next()
        if token.kind == kind { return }
        if token.kind == .end { throw unterminated() }
        throw FormulaParseError(column: token.column, message: message)
    }

    private func unterminated() -> FormulaParseError {
        FormulaParseError(column: blockColumn, message: "unterminated {! block; expected '}'")
    }

    private mutating func peek() throws(FormulaParseError) -> FormulaToken {
        if let lookahead { return lookahead }
        let token = try lexer.next()
        lookahead = token
        return token
    }

    private mutating func next() throws(FormulaParseError) -> FormulaToken {
        if let token = lookahead {
            lookahead = nil
            return token
        }
        return try lexer.next()
    }
}
