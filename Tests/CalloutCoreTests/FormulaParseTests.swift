import Testing

@testable import CalloutCore

@Suite("Formula parsing")
struct FormulaParseTests {
    /// (source, expected column, fragment of the message)
    static let errors: [(String, Int, String)] = [
        ("{!\"abc", 3, "unterminated string literal"),
        ("ab{!'x", 5, "unterminated string literal"),
        ("{!UPPER(\"a\")", 1, "unterminated {! block"),
        ("xy{!UPPER(\"a\"", 3, "unterminated {! block"),
        ("{!1 &", 1, "unterminated {! block"),
        ("{!", 1, "unterminated {! block"),
        ("{!}", 1, "empty {!} block"),
        ("ab{!FOO(1)}", 5, "unknown function 'FOO'"),
        ("{!UPER('a')}", 3, "unknown function 'UPER'; did you mean UPPER?"),
        ("{!LEFT(\"a\")}", 3, "LEFT takes 2 arguments, got 1"),
        ("{!UUID(1)}", 3, "UUID takes 0 arguments, got 1"),
        ("{!if(TRUE, 1)}", 3, "IF takes 3 arguments, got 2"),
        ("{!AND()}", 3, "AND takes at least 1 argument, got 0"),
        ("{!HMAC('SHA-256', 'a')}", 3, "HMAC takes 3 arguments, got 2"),
        ("{!$Foo.Bar}", 4, "unknown merge field '$Foo'"),
        ("{!$Organization.Name}", 4, "unknown merge field"),
        ("{!$Credential.Acme.Password}", 20, "unknown credential parameter 'Password'"),
        ("{!$Credential.Acme}", 3, "expected $Credential.<ExternalCredential>.<Parameter>"),
        ("{!$User}", 3, "expected $User.<Field>"),
        ("{!$User.A.B}", 3, "expected $User.<Field>"),
        ("{!$User.}", 9, "expected a name after '.'"),
        ("{!$ User.X}", 4, "expected a merge field name after '$'"),
        ("{!$Named.Foo}", 3, "expected $Named.Name or $Named.Url"),
        ("{!\"a\\n\"}", 5, "unknown escape"),
        ("{!'a\\x'}", 5, "unknown escape"),
        ("{!1 2}", 5, "expected an operator or '}'"),
        ("{!\"a\" & }", 9, "expected a value"),
        ("{!1.}", 4, "expected digits after the decimal point"),
        ("{!-'a'}", 4, "expected a number after '-'"),
        ("{!- -1}", 5, "expected a number after '-'"),
        ("{!1 -", 1, "unterminated {! block"),
        ("{!12abc}", 5, "unexpected letter after a number"),
        ("{!1234567890123456789012345678901}", 3, "number literal is longer than 30"),
        ("{!#}", 3, "unexpected character '#'"),
        ("{!1 ! 2}", 5, "did you mean '!='"),
        ("{!1 < 2}", 5, "did you mean '<>'"),
        ("{!a}", 3, "unknown name 'a'"),
        ("{!1 = 2 = 3}", 9, "comparisons cannot be chained"),
        ("{!HASH('MD5', 'x')}", 3, "HASH algorithm must be"),
        ("{!HMAC('SHA-1', 'x', 'k')}", 3, "HMAC algorithm must be"),
        ("{!UPPER('a' 'b')}", 13, "expected ',' or ')'"),
        ("{!(1}", 5, "expected ')'"),
        ("{!)}", 3, "expected a value"),
    ]

    @Test("parse errors carry a column and a message", arguments: errors)
    func parseErrors(source: String, column: Int, fragment: String) throws {
        let error = try #require(FormulaFixtures.parseError(source))
        #expect(error.column == column, "\(source): \(error)")
        #expect(error.message.contains(fragment), "\(source): \(error)")
        #expect(error.description == "formula column \(column): \(error.message)")
    }

    @Test func limitsHaveNames() {
        #expect(Formula.maxSourceLength == 3900)
        #expect(Formula.maxNestingDepth == 64)
        #expect(Formula.maxIntermediateBytes == 65_536)
        #expect(FormulaContext().maxValueLength == 1300)
    }

    @Test func sourceLimit() throws {
        let atLimit = String(repeating: "a", count: Formula.maxSourceLength)
        #expect(try Formula(parsing: atLimit).source == atLimit)
        let error = try #require(FormulaFixtures.parseError(atLimit + "a"))
        #expect(error.column == Formula.maxSourceLength + 1)
        #expect(error.message.contains("3900"))
    }

    @Test func nestingLimit() throws {
        func nested(_ depth: Int) -> String {
            "{!" + String(repeating: "(", count: depth) + "1" + String(repeating: ")", count: depth) + "}"
        }
        #expect(FormulaFixtures.evaluate(nested(FormulaParser.maxDepth)) == "1")
        let error = try #require(FormulaFixtures.parseError(nested(FormulaParser.maxDepth + 1)))
        #expect(error.message.contains("nesting is deeper than 64"))
        #expect(error.column == FormulaParser.maxDepth + 3)

        let calls =
            "{!" + String(repeating: "UPPER(", count: 65) + "'a'" + String(repeating: ")", count: 65)
            + "}"
        #expect(FormulaFixtures.parseError(calls)?.message.contains("nesting") == true)
        // Hostile input far past the limit is refused without deep recursion.
        let hostile = "{!" + String(repeating: "(", count: 3000)
        #expect(FormulaFixtures.parseError(hostile)?.message.contains("nesting") == true)
    }

    @Test func longOperatorChainsNeedNoRecursion() throws {
        let terms = Array(repeating: "'a'", count: 900)
        let source = "{!" + terms.joined(separator: "&") + "}"
        #expect(source.count <= Formula.maxSourceLength)
        #expect(FormulaFixtures.evaluate(source) == String(repeating: "a", count: 900))
    }

    @Test func introspection() throws {
        let formula = try Formula(
            parsing:
                "{!$User.Department}-{!$user.EMAIL}{!$Credential.Acme.ClientId}{!$Credential.Beta.Name}")
        #expect(formula.referencedCredentials == ["Acme", "Beta"])
        #expect(formula.referencedUserFields == ["department", "email"])
        #expect(formula.referencesUser)
        #expect(!formula.referencesSecrets)
        #expect(!formula.referencesNamedCredential)
        #expect(!formula.isConstant)

        let secret = try Formula(parsing: "Bearer {!$Credential.Acme.accesstoken}")
        #expect(secret.referencesSecrets)
        #expect(secret.referencedCredentials == ["Acme"])
        #expect(try Formula(parsing: "{!$Credential.X.AuthorizationHeaderValue}").referencesSecrets)
        #expect(try Formula(parsing: "{!$Named.url}").referencesNamedCredential)
    }

    @Test(
        "constant formulas",
        arguments: ["plain", "", "a\\{!b", "{!'a' & 'b'}", "{!UPPER('x') & 1 + 2}"])
    func constants(source: String) throws {
        #expect(try Formula(parsing: source).isConstant)
    }

    @Test(
        "formulas that depend on the context",
        arguments: ["{!NOW_EPOCH()}", "{!UUID()}", "{!$User.A}", "{!$Named.Name}"])
    func nonConstants(source: String) throws {
        #expect(try !Formula(parsing: source).isConstant)
    }

    @Test func equalityAndDescriptionFollowTheSource() throws {
        let a = try Formula(parsing: "{!$User.Department}")
        let b = try Formula(parsing: "{!$User.Department}")
        let c = try Formula(parsing: "{!$User.department}")
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        #expect(a != c)
        #expect(Set([a, b, c]).count == 2)
        #expect(a.description == "{!$User.Department}")
    }
}
