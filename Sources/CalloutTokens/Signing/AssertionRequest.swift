import CalloutCore
import Foundation

/// What goes into one JWT client assertion (RFC 7523 §3).
public struct AssertionRequest: Sendable {
    /// The client id: default `iss` and `sub`.
    public var clientId: String
    /// The identity provider's token endpoint URL: default `aud`.
    public var audience: String
    /// The JWS algorithm; the key must be able to sign with it.
    public var algorithm: SigningAlgorithm
    /// `exp` = `now` + this. Must be positive.
    public var expirationSeconds: Int64
    /// The current time in seconds since the epoch: `iat`, and `nbf` less `notBeforeSkewSeconds`.
    public var now: Int64
    /// `nbf` is set this many seconds before `now`, for identity providers whose clock is behind.
    public var notBeforeSkewSeconds: Int64 = 0
    /// The unique assertion id (`jti`).
    public var jti: String
    /// Body claims, in order: each overrides a default claim of the same name or adds one.
    /// `iat`, `nbf` and `exp` must be integer text and are emitted as JSON integers; all other
    /// values are emitted as JSON strings.
    public var claims: [(name: String, value: String)]
    /// Header entries, in order: each overrides a default header member or adds one.
    /// `alg` cannot be overridden.
    public var headerEntries: [(name: String, value: String)]

    /// - Parameter jti: defaults to a fresh lowercase UUID.
    public init(
        clientId: String,
        audience: String,
        algorithm: SigningAlgorithm = .rs256,
        expirationSeconds: Int64 = 120,
        now: Int64,
        jti: String = UUID().uuidString.lowercased(),
        claims: [(name: String, value: String)] = [],
        headerEntries: [(name: String, value: String)] = []
    ) {
        self.clientId = clientId
        self.audience = audience
        self.algorithm = algorithm
        self.expirationSeconds = expirationSeconds
        self.now = now
        self.jti = jti
        self.claims = claims
        self.headerEntries = headerEntries
    }
}

/// Why an assertion could not be built.
public enum AssertionBuildError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `iat`, `nbf` or `exp` given a value that is not an integer.
    case nonIntegerTimeClaim(name: String)
    /// The header entry `alg` was given; the algorithm comes from the request.
    case algorithmHeaderOverride
    /// `expirationSeconds` was zero or negative.
    case nonPositiveExpiration

    public var description: String {
        switch self {
        case .nonIntegerTimeClaim(let name):
            "claim '\(name)' must be an integer number of seconds since the epoch"
        case .algorithmHeaderOverride:
            "the 'alg' header cannot be set by a header entry; set the signing algorithm instead"
        case .nonPositiveExpiration:
            "the assertion lifetime (expirationSeconds) must be positive"
        }
    }
}
