/// A formula that cannot be parsed: the problem and where it was found in the source.
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

/// A formula that parsed but could not be evaluated for one request.
///
/// The message names the problem only. It never contains evaluated values or inputs (user
/// attributes, tokens, decoded text), so it is safe to log; the caller adds the location.
public struct FormulaEvaluationError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
