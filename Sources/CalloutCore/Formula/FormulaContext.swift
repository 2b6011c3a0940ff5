public import Foundation

/// Everything a formula may read, passed in explicitly so evaluation is deterministic in tests.
public struct FormulaContext: Sendable {
    /// The caller's user attributes; looked up case-insensitively.
    public var user: [String: String]
    /// Parameters of resolved credentials: credential name -> parameter name -> value.
    /// Parameter names are looked up case-insensitively.
    public var credentials: [String: [String: String]]
    /// Whether `AccessToken` / `AuthorizationHeaderValue` may be read.
    public var allowSecrets: Bool
    /// Read by `$Named.Name`; `nil` reads as empty text.
    public var namedCredentialName: String?
    /// Read by `$Named.Url`; `nil` reads as empty text.
    public var namedCredentialURL: String?
    /// Seconds since the Unix epoch.
    public var now: @Sendable () -> Int64
    public var uuid: @Sendable () -> UUID
    /// An evaluated value longer than this (in characters) is an error, never silently truncated.
    public var maxValueLength: Int
    /// Rules that depend on who wrote the formula and where its value goes.
    public var use: FormulaUse = .configured

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
