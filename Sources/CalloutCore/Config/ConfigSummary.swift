/// The one-screen summary `callout-proxy check` prints for a valid configuration.
public enum ConfigSummary {
    public static func render(_ config: ProxyConfig) -> String {
        var out: [String] = []
        let p = config.proxy
        out.append("\(config.sourceFile): OK")
        out.append("listen \(p.listen)" + (p.adminListen.map { ", admin \($0)" } ?? ", admin off"))
        out.append(
            "trusted callers: "
                + (p.trustedCallers.isEmpty ? "none" : p.trustedCallers.map(\.description).joined(separator: ", ")))
        if !config.callers.isEmpty {
            out.append("callers: " + config.callers.map(\.name).joined(separator: ", "))
        }
        out.append("")
        out.append("certificates (\(config.certificates.count)):")
        for c in config.certificates {
            out.append("  \(c.name): key \(c.privateKeyFile)" + (c.certificateFile.map { ", certificate \($0)" } ?? ""))
        }
        out.append("external credentials (\(config.externalCredentials.count)):")
        for e in config.externalCredentials {
            let how =
                switch e.flow {
                case .clientCredentialsJWTAssertion: "\(e.signingAlgorithm.rawValue) with \(e.signingCertificate)"
                case .jwtBearer:
                    "JWT bearer, \(e.signingAlgorithm.rawValue) with \(e.signingCertificate)"
                        + (e.clientAuthentication == .none
                            ? "" : ", client authentication \(e.clientAuthentication.rawValue)")
                case .clientCredentialsClientSecret:
                    "client credentials, client authentication \(e.clientAuthentication.rawValue)"
                }
            out.append("  \(e.name) (\(e.label)): \(how) -> \(e.tokenEndpointDescription)")
            if let scope = e.scope { out.append("    scope: \(scope.source)") }
            let codes = ([401] + e.additionalRefreshStatusCodes).map(String.init).joined(separator: ", ")
            out.append("    refresh on: \(codes)")
            out.append("    principals by sequence:")
            for pr in e.principals {
                var grants: [String] = []
                if !pr.permissionSets.isEmpty {
                    grants.append("permission sets " + pr.permissionSets.joined(separator: ", "))
                }
                if !pr.profiles.isEmpty { grants.append("profiles " + pr.profiles.joined(separator: ", ")) }
                out.append(
                    "      \(pr.sequenceNumber). \(pr.name) as \(pr.clientId) (\(grants.joined(separator: "; ")))")
            }
        }
        out.append("named credentials (\(config.namedCredentials.count)):")
        for n in config.namedCredentials {
            let state = n.enabled ? "" : " [disabled]"
            out.append("  \(n.name) -> \(n.url.absoluteString) via \(n.externalCredential)\(state)")
        }
        return out.joined(separator: "\n")
    }
}
