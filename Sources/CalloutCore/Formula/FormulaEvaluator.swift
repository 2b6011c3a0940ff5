import Foundation

/// Walks a parsed expression against one context. Reads nothing but the context.
struct FormulaEvaluator {
    let context: FormulaContext

    func evaluate(_ node: FormulaNode) throws(FormulaEvaluationError) -> FormulaValue {
        switch node {
        case .literal(let value):
            return value
        case .user(_, let lowercased):
            return try mergeField(context.userValue(lowercasedField: lowercased))
        case .credential(let name, let parameter):
            return try mergeField(try credentialParameter(name: name, parameter: parameter))
        case .named(let field):
            switch field {
            case .name: return try mergeField(context.namedCredentialName ?? "")
            case .url: return try mergeField(context.namedCredentialURL ?? "")
            }
        case .call(let function, let arguments):
            let result = try call(function, arguments)
            try Self.checkSize(result)
            return result
        case .chain(let first, let links):
            return try chain(first, links)
        case .compare(let equal, let lhs, let rhs):
            let same = try Self.equals(try evaluate(lhs), try evaluate(rhs))
            return .bool(same == equal)
        }
    }

    func text(_ node: FormulaNode) throws(FormulaEvaluationError) -> String {
        try evaluate(node).asText()
    }

    static func checkSize(_ value: FormulaValue) throws(FormulaEvaluationError) {
        if value.byteCount > FormulaValue.maxIntermediateBytes {
            throw FormulaEvaluationError(
                "intermediate value is larger than \(FormulaValue.maxIntermediateBytes) bytes")
        }
    }

    /// A merge field's value; in a scope it may not hold whitespace, which would add scopes.
    private func mergeField(_ value: String) throws(FormulaEvaluationError) -> FormulaValue {
        if context.use == .scope, value.unicodeScalars.contains(where: { $0.properties.isWhitespace }) {
            throw FormulaEvaluationError("a merge field value used in a scope may not contain whitespace")
        }
        return .text(value)
    }

    private func credentialParameter(name: String, parameter: CredentialParameter)
        throws(FormulaEvaluationError)
        -> String
    {
        let label = "$Credential.\(name).\(parameter.rawValue)"
        if parameter.isSecret && !context.allowSecrets {
            throw Self.secretRefused(label)
        }
        var parameters = context.credentials[name]
        if parameters == nil {
            let lowercased = name.lowercased()
            parameters = context.credentials.first(where: { $0.key.lowercased() == lowercased })?.value
        }
        guard let parameters else {
            throw FormulaEvaluationError("\(label): external credential '\(name)' is not available here")
        }
        if let value = parameters[parameter.rawValue] { return value }
        let lowercased = parameter.rawValue.lowercased()
        return parameters.first(where: { $0.key.lowercased() == lowercased })?.value ?? ""
    }

    static func secretRefused(_ label: String) -> FormulaEvaluationError {
        FormulaEvaluationError(
            "\(label) is only available in header values of named credentials that allow formulas in headers"
        )
    }

    /// Left to right: `+` / `-` of two numbers add / subtract, two byte values join as bytes,
    /// anything else joins as text; `-` of anything but numbers is an error.
    private func chain(_ first: FormulaNode, _ links: [ChainLink]) throws(FormulaEvaluationError)
        -> FormulaValue
    {
        var accumulated = try evaluate(first)
        for link in links {
            let operand = try evaluate(link.operand)
            switch (accumulated, operand) {
            case (.number(let a), .number(let b)) where link.op != .ampersand:
                let result = link.op == .plus ? a + b : a - b
                if result.isNaN { throw FormulaEvaluationError("number is out of range") }
                accumulated = .number(result)
            case _ where link.op == .minus:
                throw FormulaEvaluationError("'-' needs two numbers")
            case (.bytes(let a), .bytes(let b)):
                accumulated = .bytes(a + b)
            default:
                accumulated = .text(try accumulated.asText() + operand.asText())
            }
            try Self.checkSize(accumulated)
        }
        return accumulated
    }

    /// Numbers compare numerically, booleans as booleans, bytes byte for byte, anything else
    /// as text (case-sensitive).
    static func equals(_ a: FormulaValue, _ b: FormulaValue) throws(FormulaEvaluationError) -> Bool {
        switch (a, b) {
        case (.number(let x), .number(let y)): return x == y
        case (.bool(let x), .bool(let y)): return x == y
        case (.bytes(let x), .bytes(let y)): return x == y
        default: return try a.asText() == b.asText()
        }
    }
}
