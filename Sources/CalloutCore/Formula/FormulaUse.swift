/// Who wrote a formula and where its value goes: rules on top of the language itself.
public enum FormulaUse: Sendable, Equatable {
    /// Written by the operator in the configuration: every merge field and function.
    case configured
    /// Written by the caller, in a request header or body of a named credential that allows
    /// formulas. `AccessToken` and `AuthorizationHeaderValue` may only be a whole `{!...}` block
    /// (with literal text around it), never a function argument or an operand: otherwise the
    /// proxy's own answers (a formula error or not) would read the token out one guess at a time.
    case callerWritten
    /// An external credential's scope: a merge field value may not contain whitespace, which
    /// would add scopes (`Finance offline_access`).
    case scope
}

extension FormulaNode {
    /// True when the expression reads `AccessToken` or `AuthorizationHeaderValue` anywhere.
    var readsSecret: Bool {
        switch self {
        case .literal, .user, .named: false
        case .credential(_, let parameter): parameter.isSecret
        case .call(_, let arguments): arguments.contains { $0.readsSecret }
        case .chain(let first, let links): first.readsSecret || links.contains { $0.operand.readsSecret }
        case .compare(_, let lhs, let rhs): lhs.readsSecret || rhs.readsSecret
        }
    }
}

extension [FormulaSegment] {
    /// True when every block that reads a secret is nothing but that merge field.
    var placesSecretsWhole: Bool {
        allSatisfy { segment in
            guard case .expression(let node) = segment else { return true }
            if case .credential = node { return true }
            return !node.readsSecret
        }
    }
}
