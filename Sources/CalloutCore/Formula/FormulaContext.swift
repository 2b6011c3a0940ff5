public import Foundation

/// Everything a formula may read, passed in explicitly so evaluation is deterministic in tests.
public struct FormulaContext: Sendable {
    /// The caller's user attributes, keyed by lowercased field name: `$User.<Field>` is
    /// case-insensitive, like the header names the fields arrive in. Set with any case; keys that
    /// differ only by case keep the value of the first key in code-point order, so the lookup
    /// never depends on a dictionary's order. (``CallerIdentity`` already holds lowercased keys,
    /// with its own documented precedence.)
    public var user: [String: String] {
        get { userByLowercasedField }
        set { userByLowercasedField = Self.lowercasingKeys(newValue) }
    }
    private var userByLowercasedField: [String: String] = [:]
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
        self.userByLowercasedField = Self.lowercasingKeys(user)
        self.credentials = credentials
        self.allowSecrets = allowSecrets
        self.namedCredentialName = namedCredentialName
        self.namedCredentialURL = namedCredentialURL
        self.now = now
        self.uuid = uuid
        self.maxValueLength = maxValueLength
    }

    /// The value of `$User.<field>` (`field` lowercased); empty when the caller has none.
    public func userValue(lowercasedField field: String) -> String {
        userByLowercasedField[field] ?? ""
    }

    static func lowercasingKeys(_ user: [String: String]) -> [String: String] {
        if user.keys.allSatisfy({ $0 == $0.lowercased() }) { return user }
        var out: [String: String] = [:]
        for key in user.keys.sorted() where out[key.lowercased()] == nil {
            out[key.lowercased()] = user[key]
        }
        return out
    }
}
