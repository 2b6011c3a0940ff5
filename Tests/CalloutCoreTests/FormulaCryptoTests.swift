import Testing

@testable import CalloutCore

@Suite("Formula digests and MACs")
struct FormulaCryptoTests {
    static let vectors: [(String, String)] = [
        (
            "{!HEX(HASH('SHA-256', 'abc'))}",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        ),
        (
            "{!HEX(HASH('sha256', BLOB('abc')))}",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        ),
        ("{!HEX(HASH('SHA-1', 'abc'))}", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        (
            "{!HEX(HASH('SHA-512', 'abc'))}",
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        ),
        ("{!BASE64ENCODE(HASH('SHA-256', 'abc'))}", "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="),
        // RFC 4231 test case 2.
        (
            "{!HEX(HMAC('SHA-256', 'what do ya want for nothing?', 'Jefe'))}",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        ),
        (
            "{!HEX(HMAC('SHA-512', 'what do ya want for nothing?', 'Jefe'))}",
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        ),
        (
            "{!BASE64ENCODE(HMAC('sha-256', 'what do ya ' & 'want for nothing?', BLOB('Jefe')))}",
            "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
        ),
        // Bytes stay bytes through concatenation, so a digest can be hashed again.
        (
            "{!LEN(HEX(HASH('SHA-256', HASH('SHA-256', 'a') & HASH('SHA-256', 'b'))))}",
            "64"
        ),
    ]

    @Test("known vectors", arguments: vectors)
    func knownVectors(source: String, expected: String) {
        #expect(FormulaFixtures.evaluate(source) == expected)
    }

    @Test func macOfUserAttributeIsNotConstant() throws {
        let formula = try Formula(parsing: "{!HEX(HMAC('SHA-256', $User.Department, 'k'))}")
        #expect(!formula.isConstant)
        #expect(try formula.evaluate(in: FormulaFixtures.context()).count == 64)
    }
}
