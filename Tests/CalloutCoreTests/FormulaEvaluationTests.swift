import Testing

@testable import CalloutCore

@Suite("Formula evaluation")
struct FormulaEvaluationTests {
    static let literalsCases: [(String, String)] = [
        ("plain text", "plain text"),
        ("", ""),
        ("x{!\"y\"}z", "xyz"),
        ("{!'single'}{!\"double\"}", "singledouble"),
        ("{!\"it\\'s\"}", "it's"),
        ("{!'say \\\"hi\\\"'}", "say \"hi\""),
        ("{!\"back\\\\slash\"}", "back\\slash"),
        ("{!'a\"b'}", "a\"b"),
        ("{!\"a'b\"}", "a'b"),
        ("{!\"a}b\"}", "a}b"),
        ("{!  'spaced'\t}", "spaced"),
        ("\\{!not a block}", "{!not a block}"),
        ("a\\b \\{ \\", "a\\b \\{ \\"),
        ("\\\\{!'x'}", "\\{!'x'}"),
        ("a}b{c", "a}b{c"),
        ("{!TRUE}/{!false}", "true/false"),
    ]

    static let operatorsCases: [(String, String)] = [
        ("{!\"session:role:\" + $User.Department}", "session:role:Finance"),
        ("{!'a' & 'b' & 'c'}", "abc"),
        ("{!1 + 2}", "3"),
        ("{!5 - 7}", "-2"),
        ("{!-1.5 + 1}", "-0.5"),
        ("{!10 - 2 - 3 & 'x'}", "5x"),
        ("{!1.5 + 1.5}", "3"),
        ("{!0.1 + 0.2}", "0.3"),
        ("{!2.50}", "2.5"),
        ("{!007}", "7"),
        ("{!1.0}", "1"),
        ("{!100}", "100"),
        ("{!1 - 1}", "0"),
        ("{!123456789012345678901234567890 + 1}", "123456789012345678901234567891"),
        ("{!'1' + 2}", "12"),
        ("{!1 & 2}", "12"),
        ("{!1 + 2 & 'x'}", "3x"),
        ("{!'x' & 1 + 2}", "x12"),
        ("{!'x' & (1 + 2)}", "x3"),
        ("{!1 = 1.0}", "true"),
        ("{!'a' == 'A'}", "false"),
        ("{!'a' <> 'b'}", "true"),
        ("{!1 != 1}", "false"),
        ("{!TRUE = TRUE}", "true"),
        ("{!(1 = 1) & '!'}", "true!"),
        ("{!BLOB('a') & BLOB('b')}", "ab"),
        ("{!BLOB('a') = 'a'}", "true"),
    ]

    static let functionsCases: [(String, String)] = [
        ("{!BLANKVALUE('', 'd')}", "d"),
        ("{!BLANKVALUE('v', 'd')}", "v"),
        ("{!BLANKVALUE($User.Missing, 'none')}", "none"),
        ("{!BLANKVALUE(0, 'none')}", "0"),
        ("{!IF(1 = 1, 'yes', 'no')}", "yes"),
        ("{!IF($User.Department = 'Sales', 'S', 'O')}", "O"),
        ("{!IF('TRUE', 'yes', 'no')}", "yes"),
        ("{!ISBLANK('')}", "true"),
        ("{!ISBLANK(' ')}", "false"),
        ("{!ISBLANK($User.Blank)}", "true"),
        ("{!NOT(ISBLANK('x'))}", "true"),
        ("{!AND(TRUE, 1 = 1, 'a' = 'a')}", "true"),
        ("{!AND(TRUE, FALSE)}", "false"),
        ("{!OR(FALSE, FALSE)}", "false"),
        ("{!OR(FALSE, TRUE)}", "true"),
        ("{!UPPER('abc é')}", "ABC É"),
        ("{!lower('ABC')}", "abc"),
        ("{!Trim('  x y  ')}", "x y"),
        ("{!LEFT('hello', 2)}", "he"),
        ("{!LEFT('hello', 10)}", "hello"),
        ("{!LEFT('hello', -1)}", ""),
        ("{!LEFT('hello', $User.Count)}", "hel"),
        ("{!RIGHT('hello', 3)}", "llo"),
        ("{!RIGHT('hello', 0)}", ""),
        ("{!LEN('héllo')}", "5"),
        ("{!LEN('')}", "0"),
        ("{!SUBSTITUTE('a-b-c', '-', '+')}", "a+b+c"),
        ("{!SUBSTITUTE('a-b', '', '+')}", "a-b"),
        ("{!SUBSTITUTE('aaa', 'a', '')}", ""),
        ("{!CONTAINS('hello', 'ell')}", "true"),
        ("{!CONTAINS('hello', 'xyz')}", "false"),
        ("{!BEGINS('hello', 'he')}", "true"),
        ("{!BEGINS('hello', 'lo')}", "false"),
        ("{!TEXT(42)}", "42"),
        ("{!TEXT(1.25)}", "1.25"),
        ("{!TEXT(TRUE)}", "true"),
        ("{!URLENCODE('a b&c/é~-._')}", "a%20b%26c%2F%C3%A9~-._"),
        ("{!URLENCODE('')}", ""),
        ("{!BASE64ENCODE('héllo')}", "aMOpbGxv"),
        ("{!BASE64DECODE('aMOpbGxv')}", "héllo"),
        ("{!BASE64DECODE('YWI')}", "ab"),
        ("{!BASE64DECODE(BASE64ENCODE($User.Department))}", "Finance"),
        ("{!BLOB('abc')}", "abc"),
        ("{!HEX('abc')}", "616263"),
        ("{!HEX(BLOB('abc'))}", "616263"),
        ("{!HEX('')}", ""),
        ("{!NOW_EPOCH()}", "1700000000"),
        ("{!NOW_EPOCH() + 300}", "1700000300"),
        ("{!NOW_EPOCH() - 60}", "1699999940"),
        ("{!UUID()}", "3f2504e0-4f89-41d3-9a0c-0305e82c3301"),
        ("{!UPPER(LEFT(TRIM($User.Spaces), 3))}", "PAD"),
        ("{!IF(ISBLANK($User.Blank), UPPER(BLANKVALUE($User.Nope, 'fallback')), 'x')}", "FALLBACK"),
    ]

    static let mergeFieldsCases: [(String, String)] = [
        ("{!$User.Department}", "Finance"),
        ("{!$user.department}", "Finance"),
        ("{!$USER.DEPARTMENT}", "Finance"),
        ("{!$User.Email}", "ann@example.com"),
        ("[{!$User.Missing}]", "[]"),
        ("{!$Credential.Acme.ClientId}", "client-123"),
        ("{!$credential.Acme.clientid}", "client-123"),
        ("{!$Credential.Acme.PrincipalName}", "FinanceUsers"),
        ("{!$Credential.Acme.Name}", "Acme"),
        ("{!$Credential.Acme.Scope}", "api.read"),
        ("[{!$Credential.Acme.Label}]", "[]"),
        ("{!$Named.Name} {!$Named.Url}", "AcmeApi https://api.acme.test/v1"),
    ]

    @Test("literals and escapes", arguments: literalsCases)
    func literal(source: String, expected: String) {
        #expect(FormulaFixtures.evaluate(source) == expected)
    }

    @Test("operators and numbers", arguments: operatorsCases)
    func operators(source: String, expected: String) {
        #expect(FormulaFixtures.evaluate(source) == expected)
    }

    @Test("functions", arguments: functionsCases)
    func functions(source: String, expected: String) {
        #expect(FormulaFixtures.evaluate(source) == expected)
    }

    @Test("merge fields", arguments: mergeFieldsCases)
    func mergeFields(source: String, expected: String) {
        #expect(FormulaFixtures.evaluate(source) == expected)
    }

    @Test func userValuesAreDataNeverFormulas() {
        var context = FormulaFixtures.context(allowSecrets: true)
        context.user["Tricky"] = "{!$Credential.Acme.AccessToken}"
        #expect(
            FormulaFixtures.evaluate("{!$User.Tricky}", context) == "{!$Credential.Acme.AccessToken}")
    }

    @Test func namedCredentialFieldsReadEmptyWhenUnset() {
        #expect(FormulaFixtures.evaluate("[{!$Named.Name}]", FormulaContext()) == "[]")
    }

    @Test func clockAndUUIDComeFromTheContext() throws {
        let formula = try Formula(parsing: "{!NOW_EPOCH()}")
        var context = FormulaFixtures.context()
        context.now = { 42 }
        #expect(try formula.evaluate(in: context) == "42")
        context.now = { 43 }
        #expect(try formula.evaluate(in: context) == "43")
    }

    /// (source, fragment of the evaluation error)
    static let evaluationErrorsCases: [(String, String)] = [
        ("{!BASE64DECODE('!!!')}", "not valid base64"),
        ("{!'a' - 1}", "'-' needs two numbers"),
        ("{!BASE64DECODE('/w==')}", "not valid UTF-8"),
        ("{!HASH('SHA-256', 'abc')}", "BASE64ENCODE or HEX"),
        ("{!HASH('SHA-256', 'abc') & 'x'}", "BASE64ENCODE or HEX"),
        ("{!UPPER(HASH('SHA-256', 'abc'))}", "BASE64ENCODE or HEX"),
        ("{!IF('x', 'a', 'b')}", "IF needs a true/false value"),
        ("{!NOT(1)}", "NOT needs a true/false value"),
        ("{!LEFT('a', 'b')}", "LEFT needs a whole number"),
        ("{!RIGHT('a', 1.5)}", "RIGHT needs a whole number"),
        ("{!HASH($User.Algo, 'x')}", "HASH algorithm must be"),
        ("{!HMAC($User.Algo, 'x', 'k')}", "HMAC algorithm must be"),
        ("{!$Credential.Other.ClientId}", "'Other' is not available"),
        ("{!$User.Evil}", "line break or NUL"),
        ("a\nb", "line break or NUL"),
        ("a\rb", "line break or NUL"),
        ("{!'a' & BASE64DECODE('AA==')}", "line break or NUL"),
        ("{!$Credential.Acme.AccessToken}", "only available in header values"),
        (
            "{!IF(FALSE, $Credential.Acme.AuthorizationHeaderValue, 'x')}",
            "only available in header values"
        ),
        (
            "{!SUBSTITUTE(SUBSTITUTE(SUBSTITUTE(SUBSTITUTE(SUBSTITUTE('aaaaaaaaaa', 'a', 'aaaaaaaaaa'), 'a', 'aaaaaaaaaa'), 'a', 'aaaaaaaaaa'), 'a', 'aaaaaaaaaa'), 'a', 'aaaaaaaaaa')}",
            "larger than 65536 bytes"
        ),
    ]

    @Test("evaluation errors", arguments: evaluationErrorsCases)
    func evaluationErrors(source: String, fragment: String) throws {
        let error = try #require(FormulaFixtures.evaluationError(source))
        #expect(error.message.contains(fragment), "\(source): \(error)")
    }

    @Test func intermediateValuesAreBoundedThroughConcatenation() throws {
        var user = FormulaFixtures.user
        user["Big"] = String(repeating: "x", count: 40_000)
        let context = FormulaContext(user: user)
        let error = try #require(
            FormulaFixtures.evaluationError("{!LEN($User.Big & $User.Big)}", context))
        #expect(error.message.contains("larger than 65536 bytes"))
        #expect(FormulaFixtures.evaluate("{!LEN($User.Big)}", context) == "40000")
    }

    @Test func valueLengthLimitIsReportedNeverTruncated() throws {
        let exact = String(repeating: "é", count: 1300)
        #expect(FormulaFixtures.evaluate(exact) == exact)
        let error = try #require(FormulaFixtures.evaluationError(exact + "e"))
        #expect(error.message.contains("1300"))

        let small = FormulaFixtures.context(maxValueLength: 5)
        #expect(FormulaFixtures.evaluate("{!LEFT($User.Department, 5)}", small) == "Finan")
        let limited = try #require(FormulaFixtures.evaluationError("{!$User.Department}", small))
        #expect(limited.message.contains("limit of 5 characters"))
    }

    @Test func secretsAreReadableWhereAllowed() throws {
        let context = FormulaFixtures.context(allowSecrets: true)
        #expect(
            FormulaFixtures.evaluate("{!$Credential.Acme.AuthorizationHeaderValue}", context)
                == "Bearer \(FormulaFixtures.secretToken)")
        #expect(
            FormulaFixtures.evaluate("Bearer {!$Credential.acme.accesstoken}", context)
                == "Bearer \(FormulaFixtures.secretToken)")
        let refused = try #require(FormulaFixtures.evaluationError("x{!$Credential.Acme.AccessToken}"))
        #expect(refused.message.hasPrefix("$Credential.Acme.AccessToken is only available"))
    }

    /// Failing formulas whose inputs hold secret values: no error may repeat them.
    static let hygieneCases: [(String, Bool)] = [
        ("{!BASE64DECODE($User.Secret)}", false),
        ("{!LEFT('a', $User.Secret)}", false),
        ("{!IF($User.Secret, 'a', 'b')}", false),
        ("{!HASH($User.Secret, 'x')}", false),
        ("{!$User.SecretLine}", false),
        ("{!$Credential.Acme.AccessToken}", false),
        ("{!$Credential.Acme.AccessToken & $User.Evil}", true),
        ("{!LEFT($Credential.Acme.AccessToken, 'n')}", true),
        ("{!IF($Credential.Acme.AccessToken, 'a', 'b')}", true),
        ("{!BASE64DECODE($Credential.Acme.AuthorizationHeaderValue)}", true),
    ]

    @Test("errors never contain secret inputs", arguments: hygieneCases)
    func errorsNeverContainSecrets(source: String, allowSecrets: Bool) throws {
        let error = try #require(
            FormulaFixtures.evaluationError(source, FormulaFixtures.context(allowSecrets: allowSecrets)))
        for secret in [FormulaFixtures.secretMarker, FormulaFixtures.secretToken, "tok-"] {
            #expect(!error.description.contains(secret), "\(source): \(error)")
        }
    }

    @Test func lengthErrorDoesNotLeakTheToken() throws {
        let context = FormulaFixtures.context(allowSecrets: true, maxValueLength: 4)
        let error = try #require(
            FormulaFixtures.evaluationError("{!$Credential.Acme.AccessToken}", context))
        #expect(!error.description.contains(FormulaFixtures.secretToken))
    }
}
