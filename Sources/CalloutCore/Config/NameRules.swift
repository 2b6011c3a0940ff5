/// Salesforce's rules for API names of credentials, certificates, principals and callers.
public enum NameRules {
    public static let maxNameLength = 80
    public static let maxLabelLength = 80

    /// Nil when `name` is a valid API name, else what is wrong with it.
    public static func problem(with name: String) -> String? {
        if name.isEmpty { return "must not be empty" }
        if name.count > maxNameLength { return "must be at most \(maxNameLength) characters" }
        guard let first = name.unicodeScalars.first, isASCIILetter(first) else {
            return "must begin with a letter"
        }
        for scalar in name.unicodeScalars where !(isASCIILetter(scalar) || isDigit(scalar) || scalar == "_") {
            return scalar == " "
                ? "must not contain spaces" : "may contain only letters, digits and underscores"
        }
        if name.hasSuffix("_") { return "must not end with an underscore" }
        if name.contains("__") { return "must not contain two consecutive underscores" }
        return nil
    }

    private static func isASCIILetter(_ s: Unicode.Scalar) -> Bool {
        (s >= "a" && s <= "z") || (s >= "A" && s <= "Z")
    }

    private static func isDigit(_ s: Unicode.Scalar) -> Bool { s >= "0" && s <= "9" }

    /// Nil when `name` is a valid principal name, else what is wrong with it. Principal names are
    /// display names ("Admin", "Marketing Group"): printable ASCII (they travel in the
    /// `X-Callout-Principal` header and in metric labels), spaces allowed but not at either end,
    /// at most ``maxNameLength`` characters.
    public static func principalNameProblem(with name: String) -> String? {
        if name.isEmpty { return "must not be empty" }
        if name.count > maxNameLength { return "must be at most \(maxNameLength) characters" }
        if !name.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7F }) {
            return "may contain only printable ASCII characters and spaces"
        }
        if name.first == " " || name.last == " " { return "must not begin or end with a space" }
        return nil
    }
}
