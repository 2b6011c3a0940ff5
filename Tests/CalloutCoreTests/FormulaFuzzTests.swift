import Testing

@testable import CalloutCore

/// Deterministic fuzzing: the parser never crashes, errors are positioned inside the source,
/// and well-formed expressions always parse and then either evaluate or report an error.
@Suite("Formula fuzzing")
struct FormulaFuzzTests {
    static let alphabet = Array("{!}()\"',&+-=<>$._\\ \t\n\r0123456789aAbBeEfFiIlLnNpPrRsStTuUxX#é")

    @Test func randomTextIsParsedOrRejectedWithAPosition() {
        var rng = SeededGenerator(seed: 0x5EED_0001)
        var parsed = 0
        var rejected = 0
        for round in 0..<5_000 {
            let length = Int.random(in: 0...48, using: &rng)
            let source: String
            if round % 2 == 0 {
                // Raw bytes, decoded leniently: exercises replacement characters and controls.
                let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
                source = "{!" + String(decoding: bytes, as: UTF8.self)
            } else {
                source = String((0..<length).map { _ in Self.alphabet.randomElement(using: &rng)! })
            }
            if check(source) { parsed += 1 } else { rejected += 1 }
        }
        #expect(parsed > 0)
        #expect(rejected > 0)
    }

    @Test func wellFormedExpressionsParseAndEvaluate() {
        var rng = SeededGenerator(seed: 0x5EED_0002)
        var generator = ExpressionGenerator()
        var evaluated = 0
        var failed = 0
        for _ in 0..<5_000 {
            let source = "v=" + "{!" + generator.expression(depth: 0, using: &rng) + "}" + ";"
            guard source.count <= Formula.maxSourceLength else { continue }
            let formula: Formula
            do {
                formula = try Formula(parsing: source)
            } catch {
                Issue.record("well-formed source did not parse: \(source): \(error)")
                continue
            }
            for allowSecrets in [false, true] {
                do {
                    let value = try formula.evaluate(in: FormulaFixtures.context(allowSecrets: allowSecrets))
                    #expect(value.hasPrefix("v=") && value.hasSuffix(";"))
                    #expect(value.count <= 1300)
                    let breaksLine = value.utf8.contains { (byte: UInt8) in
                        byte == 10 || byte == 13 || byte == 0
                    }
                    #expect(!breaksLine)
                    evaluated += 1
                } catch {
                    #expect(!error.message.isEmpty)
                    failed += 1
                }
            }
        }
        #expect(evaluated > 1_000)
        #expect(failed > 0)
    }

    @Test func mutatedExpressionsNeverCrash() {
        var rng = SeededGenerator(seed: 0x5EED_0003)
        var generator = ExpressionGenerator()
        for _ in 0..<5_000 {
            var chars = Array("{!" + generator.expression(depth: 1, using: &rng) + "}")
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let index = Int.random(in: 0..<chars.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: chars.remove(at: index)
                case 1: chars.insert(Self.alphabet.randomElement(using: &rng)!, at: index)
                default: chars[index] = Self.alphabet.randomElement(using: &rng)!
                }
                if chars.isEmpty { break }
            }
            _ = check(String(chars))
        }
    }

    /// Parses `source`; on success evaluates it, on failure checks the column. True if parsed.
    private func check(_ source: String) -> Bool {
        do {
            let formula = try Formula(parsing: source)
            _ = try? formula.evaluate(in: FormulaFixtures.context(allowSecrets: true))
            return true
        } catch {
            #expect(
                error.column >= 1 && error.column <= source.count + 1,
                "\(error) for \(source.debugDescription)")
            #expect(!error.message.isEmpty)
            return false
        }
    }
}

/// Builds random expressions that are well-formed by construction: known functions with
/// the right arity, valid merge fields, escaped string literals, bounded depth.
struct ExpressionGenerator {
    static let maxDepth = 4
    static let stringPieces = ["a", "B", " ", "é", "'", "\"", "\\", "}", "{!", "-", "0", "==", "&"]
    static let mergeFields = [
        "$User.Department", "$user.EMAIL", "$User.Missing", "$User.Spaces", "$User.Evil", "$User.Count",
        "$Credential.Acme.ClientId", "$Credential.Acme.scope", "$Credential.Acme.AccessToken",
        "$Credential.Other.Name", "$Named.Name", "$Named.Url",
    ]
    static let functions = FormulaFunction.allCases

    mutating func expression(depth: Int, using rng: inout SeededGenerator) -> String {
        let leaf = depth >= Self.maxDepth || Int.random(in: 0..<10, using: &rng) < 3
        if leaf { return self.leaf(using: &rng) }
        switch Int.random(in: 0..<10, using: &rng) {
        case 0:
            return "(" + expression(depth: depth + 1, using: &rng) + ")"
        case 1:
            let op = ["&", "+", "&", "+", "-"].randomElement(using: &rng)!
            return expression(depth: depth + 1, using: &rng) + " \(op) "
                + expression(depth: depth + 1, using: &rng)
        case 2:
            let op = ["=", "==", "<>", "!="].randomElement(using: &rng)!
            return "(" + expression(depth: depth + 1, using: &rng) + op
                + expression(depth: depth + 1, using: &rng) + ")"
        default:
            return call(depth: depth, using: &rng)
        }
    }

    private mutating func call(depth: Int, using rng: inout SeededGenerator) -> String {
        let function = Self.functions.randomElement(using: &rng)!
        let count = Int.random(
            in: function.arity.lowerBound...min(function.arity.upperBound, 3), using: &rng)
        var arguments: [String] = []
        for index in 0..<count {
            if index == 0 && function == .hash {
                arguments.append(["'SHA-256'", "'sha-1'", "\"SHA512\""].randomElement(using: &rng)!)
            } else if index == 0 && function == .hmac {
                arguments.append(["'SHA-256'", "'sha512'"].randomElement(using: &rng)!)
            } else {
                arguments.append(expression(depth: depth + 1, using: &rng))
            }
        }
        let name = Bool.random(using: &rng) ? function.rawValue : function.rawValue.lowercased()
        return name + "(" + arguments.joined(separator: ", ") + ")"
    }

    private func leaf(using rng: inout SeededGenerator) -> String {
        switch Int.random(in: 0..<5, using: &rng) {
        case 0:
            return Self.mergeFields.randomElement(using: &rng)!
        case 1:
            let whole = Int.random(in: 0...99_999, using: &rng)
            return Bool.random(using: &rng)
                ? "\(whole)" : "\(whole).\(Int.random(in: 0...99, using: &rng))"
        case 2:
            return ["TRUE", "false"].randomElement(using: &rng)!
        default:
            let quote: Character = Bool.random(using: &rng) ? "'" : "\""
            var body = ""
            for _ in 0..<Int.random(in: 0...4, using: &rng) {
                for char in Self.stringPieces.randomElement(using: &rng)! {
                    if char == quote || char == "\\" { body.append("\\") }
                    body.append(char)
                }
            }
            return String(quote) + body + String(quote)
        }
    }
}
