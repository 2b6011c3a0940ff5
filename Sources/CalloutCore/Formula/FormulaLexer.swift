import Foundation

/// One token inside a `{!...}` block, with the 1-based column where it starts.
struct FormulaToken: Sendable {
    enum Kind: Sendable, Equatable {
        case string(String)
        case number(Decimal)
        case identifier(String)
        /// `$A.B.C`: the dot-separated parts after `$`, each with its column.
        case mergeField([FormulaNamePart])
        case leftParen, rightParen, comma, ampersand, plus, minus, equal, notEqual
        /// `}`: closes the block.
        case closeBrace
        /// End of the source inside a block.
        case end
    }
    var kind: Kind
    var column: Int
}

struct FormulaNamePart: Sendable, Equatable {
    var name: String
    var column: Int
}

/// Splits expression text into tokens. Works on the formula's characters so that columns are
/// character positions.
struct FormulaLexer {
    let chars: [Character]
    var position: Int

    static let maxNumberLength = 30

    init(chars: [Character], position: Int) {
        self.chars = chars
        self.position = position
    }

    /// Column of the character at `index`.
    static func column(_ index: Int) -> Int { index + 1 }

    mutating func next() throws(FormulaParseError) -> FormulaToken {
        while position < chars.count, chars[position].isWhitespace { position += 1 }
        let start = position
        let column = Self.column(start)
        guard position < chars.count else { return FormulaToken(kind: .end, column: column) }
        let char = chars[position]
        position += 1
        func token(_ kind: FormulaToken.Kind) -> FormulaToken {
            FormulaToken(kind: kind, column: column)
        }
        switch char {
        case "(": return token(.leftParen)
        case ")": return token(.rightParen)
        case ",": return token(.comma)
        case "&": return token(.ampersand)
        case "+": return token(.plus)
        case "-": return token(.minus)
        case "}": return token(.closeBrace)
        case "=":
            if peekChar() == "=" { position += 1 }
            return token(.equal)
        case "!":
            guard peekChar() == "=" else {
                throw FormulaParseError(column: column, message: "unexpected '!'; did you mean '!='?")
            }
            position += 1
            return token(.notEqual)
        case "<":
            guard peekChar() == ">" else {
                throw FormulaParseError(column: column, message: "unexpected '<'; did you mean '<>'?")
            }
            position += 1
            return token(.notEqual)
        case "\"", "'":
            return token(.string(try lexString(quote: char, column: column)))
        case "$":
            return token(.mergeField(try lexMergeField(column: column)))
        default:
            if Self.isDigit(char) { return token(.number(try lexNumber(start: start))) }
            if Self.isIdentifierStart(char) {
                position = start
                return token(.identifier(lexIdentifier()))
            }
            throw FormulaParseError(column: column, message: "unexpected character \(Self.quoted(char))")
        }
    }

    private func peekChar() -> Character? {
        position < chars.count ? chars[position] : nil
    }

    private mutating func lexString(quote: Character, column: Int) throws(FormulaParseError) -> String {
        var value = ""
        while position < chars.count {
            let char = chars[position]
            position += 1
            if char == quote { return value }
            if char == "\\" {
                guard position < chars.count else { break }
                let escaped = chars[position]
                guard escaped == "\"" || escaped == "'" || escaped == "\\" else {
                    throw FormulaParseError(
                        column: Self.column(position - 1),
                        message: "unknown escape in string literal; only \\\", \\' and \\\\ are allowed")
                }
                position += 1
                value.append(escaped)
            } else {
                value.append(char)
            }
        }
        throw FormulaParseError(column: column, message: "unterminated string literal")
    }

    private mutating func lexNumber(start: Int) throws(FormulaParseError) -> Decimal {
        while position < chars.count, Self.isDigit(chars[position]) { position += 1 }
        if position < chars.count, chars[position] == "." {
            position += 1
            guard position < chars.count, Self.isDigit(chars[position]) else {
                throw FormulaParseError(
                    column: Self.column(position - 1), message: "expected digits after the decimal point")
            }
            while position < chars.count, Self.isDigit(chars[position]) { position += 1 }
        }
        if position < chars.count, Self.isIdentifierStart(chars[position]) {
            throw FormulaParseError(
                column: Self.column(position), message: "unexpected letter after a number")
        }
        let text = String(chars[start..<position])
        guard text.count <= Self.maxNumberLength, let number = Decimal(string: text) else {
            throw FormulaParseError(
                column: Self.column(start),
                message: "number literal is longer than \(Self.maxNumberLength) characters")
        }
        return number
    }

    private mutating func lexIdentifier() -> String {
        let start = position
        while position < chars.count, Self.isIdentifierPart(chars[position]) { position += 1 }
        return String(chars[start..<position])
    }

    private mutating func lexMergeField(column: Int) throws(FormulaParseError) -> [FormulaNamePart] {
        var parts: [FormulaNamePart] = []
        repeat {
            if !parts.isEmpty { position += 1 }  // the dot
            let partColumn = Self.column(position)
            guard position < chars.count, Self.isIdentifierStart(chars[position]) else {
                throw FormulaParseError(
                    column: partColumn,
                    message: parts.isEmpty
                        ? "expected a merge field name after '$'" : "expected a name after '.'")
            }
            parts.append(FormulaNamePart(name: lexIdentifier(), column: partColumn))
        } while position < chars.count && chars[position] == "."
        return parts
    }

    static func isDigit(_ char: Character) -> Bool {
        char.isASCII && char.isNumber
    }

    static func isIdentifierStart(_ char: Character) -> Bool {
        (char.isASCII && char.isLetter) || char == "_"
    }

    static func isIdentifierPart(_ char: Character) -> Bool {
        isIdentifierStart(char) || isDigit(char)
    }

    /// A character for an error message: printable ASCII as-is, anything else as U+XXXX.
    static func quoted(_ char: Character) -> String {
        if char.isASCII, let ascii = char.asciiValue, ascii >= 0x20, ascii < 0x7F { return "'\(char)'" }
        let scalar =
            char.unicodeScalars.first.map { String($0.value, radix: 16, uppercase: true) } ?? "?"
        return "U+" + String(repeating: "0", count: max(0, 4 - scalar.count)) + scalar
    }
}
