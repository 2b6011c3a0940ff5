import Foundation
import Testing

@testable import CalloutCore

/// Shared inputs for the formula tests. Values marked SECRET must never appear in an error.
enum FormulaFixtures {
    static let secretToken = "tok-SECRET-7f3a"
    static let secretMarker = "SECRET-MARKER"
    static let fixedUUID = UUID(uuidString: "3F2504E0-4F89-41D3-9A0C-0305E82C3301")!

    static let user: [String: String] = [
        "Department": "Finance",
        "email": "ann@example.com",
        "Blank": "",
        "Spaces": "  padded  ",
        "Evil": "x\r\nX-Injected: 1",
        "Secret": "\(secretMarker)!!",
        "SecretLine": "\(secretMarker)\n",
        "Algo": "MD5",
        "Count": "3",
    ]

    static let credentials: [String: [String: String]] = [
        "Acme": [
            "ClientId": "client-123",
            "PrincipalName": "FinanceUsers",
            "Name": "Acme",
            "scope": "api.read",
            "AccessToken": secretToken,
            "AuthorizationHeaderValue": "Bearer \(secretToken)",
        ]
    ]

    static func context(allowSecrets: Bool = false, maxValueLength: Int = 1300) -> FormulaContext {
        FormulaContext(
            user: user,
            credentials: credentials,
            allowSecrets: allowSecrets,
            namedCredentialName: "AcmeApi",
            namedCredentialURL: "https://api.acme.test/v1",
            now: { 1_700_000_000 },
            uuid: { fixedUUID },
            maxValueLength: maxValueLength
        )
    }

    /// Parses and evaluates, failing the test with the error's description on error.
    static func evaluate(
        _ source: String, _ context: FormulaContext = context(),
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> String? {
        do {
            return try Formula(parsing: source).evaluate(in: context)
        } catch {
            Issue.record("\(source): \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    static func parseError(_ source: String) -> FormulaParseError? {
        do {
            _ = try Formula(parsing: source)
            return nil
        } catch {
            return error
        }
    }

    /// The evaluation error of a formula that parses, or nil when it evaluates.
    static func evaluationError(
        _ source: String, _ context: FormulaContext = context(),
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> FormulaEvaluationError? {
        let formula: Formula
        do {
            formula = try Formula(parsing: source)
        } catch {
            Issue.record("\(source) did not parse: \(error)", sourceLocation: sourceLocation)
            return nil
        }
        do {
            _ = try formula.evaluate(in: context)
            return nil
        } catch {
            return error
        }
    }
}

/// A small deterministic generator (SplitMix64) so fuzz runs repeat exactly.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
