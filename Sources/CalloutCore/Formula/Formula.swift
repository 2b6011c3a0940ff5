import Foundation

/// A value that may embed `{!expression}` blocks, parsed once at load and evaluated per request.
///
/// Interim form: the whole text is literal. The formula language replaces this file.
public struct Formula: Sendable, Hashable, CustomStringConvertible {
    public let source: String

    public init(parsing text: String) throws(FormulaParseError) {
        self.source = text
    }

    /// True when the text has no `{!...}` block: evaluation always gives the same string.
    public var isConstant: Bool { true }

    /// External credential names referenced through `$Credential.<Name>.<Parameter>`.
    public var referencedCredentials: Set<String> { [] }

    /// True when the formula reads `$Credential.<Name>.AccessToken` or `AuthorizationHeaderValue`.
    public var referencesSecrets: Bool { false }

    public func evaluate(in context: FormulaContext) throws(FormulaEvaluationError) -> String {
        source
    }

    public var description: String { source }
}

public struct FormulaParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// 1-based column (in characters) where the problem was found.
    public let column: Int
    public let message: String
    public init(column: Int, message: String) {
        self.column = column
        self.message = message
    }
    public var description: String { "formula column \(column): \(message)" }
}

public struct FormulaEvaluationError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Everything a formula may read, passed in explicitly so evaluation is deterministic in tests.
public struct FormulaContext: Sendable {
    /// The caller's user attributes; looked up case-insensitively.
    public var user: [String: String]
    /// Parameters of resolved credentials: credential name -> parameter name -> value.
    public var credentials: [String: [String: String]]
    /// Whether `AccessToken` / `AuthorizationHeaderValue` may be read.
    public var allowSecrets: Bool
    public var namedCredentialName: String?
    public var namedCredentialURL: String?
    /// Seconds since the Unix epoch.
    public var now: @Sendable () -> Int64
    public var uuid: @Sendable () -> UUID
    /// An evaluated value longer than this is an error, never silently truncated.
    public var maxValueLength: Int

    public init(
        user: [String: String] = [:],
        credentials: [String: [String: String]] = [:],
        allowSecrets: Bool = false,
        namedCredentialName: String? = nil,
        namedCredentialURL: String? = nil,
        now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) },
        uuid: @escaping @Sendable () -> UUID = { UUID() },
        maxValueLength: Int = 1300
    ) {
        self.user = user
        self.credentials = credentials
        self.allowSecrets = allowSecrets
        self.namedCredentialName = namedCredentialName
        self.namedCredentialURL = namedCredentialURL
        self.now = now
        self.uuid = uuid
        self.maxValueLength = maxValueLength
    }
}
