/// The product's version, printed by `--version` and in the startup log line and `Via` header.
public enum CalloutProxyVersion {
    public static let current = "0.1.0"
}
