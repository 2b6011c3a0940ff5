/// The product's version, printed by `version` / `--version` and in the startup log line and
/// `Via` header.
public enum CalloutProxyVersion {
    public static let current = "0.1.0"

    /// The Swift compiler that built this binary.
    public static let swiftCompiler: String = {
        #if compiler(>=7.0)
            "7.0 or later"
        #elseif compiler(>=6.4)
            "6.4"
        #elseif compiler(>=6.3)
            "6.3"
        #elseif compiler(>=6.2)
            "6.2"
        #else
            "6.1"
        #endif
    }()

    /// `callout-proxy <version> (commit <commit>, Swift <compiler>)`.
    public static func describe(commit: String) -> String {
        "callout-proxy \(current) (commit \(commit), Swift \(swiftCompiler))"
    }
}
