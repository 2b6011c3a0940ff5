import CalloutCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Where an issuer publishes its metadata, and what the proxy takes from it: the token endpoint,
/// only from metadata whose `issuer` is the configured one (RFC 8414 §3.3). Pure.
public enum IssuerMetadata {
    /// RFC 8414 §3.1 first (`/.well-known/oauth-authorization-server` inserted before the
    /// issuer's path), then OpenID Connect Discovery (`/.well-known/openid-configuration`
    /// appended to it).
    public static func metadataURLs(issuer: String) -> [String] {
        guard let components = URLComponents(string: issuer), let scheme = components.scheme,
            let host = components.percentEncodedHost
        else { return [] }
        let authority =
            "\(scheme)://\(host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host)"
            + (components.port.map { ":\($0)" } ?? "")
        var path = components.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        return [
            authority + "/.well-known/oauth-authorization-server" + path,
            authority + path + "/.well-known/openid-configuration",
        ]
    }

    /// Why metadata was not usable. Texts hold URLs and member names only.
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// The `token_endpoint` of a metadata document for `issuer`.
    public static func tokenEndpoint(from body: [UInt8], issuer: String) throws(Problem) -> String {
        guard let members = JSONValue.object(from: body) else { throw Problem("the metadata is not a JSON object") }
        guard let published = members["issuer"]?.stringValue else { throw Problem("the metadata has no issuer") }
        guard published == issuer else {
            throw Problem(
                "the metadata names issuer \(quoted(published)), not the configured \(quoted(issuer)) (RFC 8414 §3.3)")
        }
        guard let endpoint = members["token_endpoint"]?.stringValue, !endpoint.isEmpty else {
            throw Problem("the metadata has no token_endpoint")
        }
        guard let url = URLComponents(string: endpoint), url.host?.isEmpty == false, url.fragment == nil,
            url.user == nil, url.password == nil
        else { throw Problem("token_endpoint \(quoted(endpoint)) is not an absolute URL") }
        do throws(TokenExchangeError) {
            try TokenEndpointClient.validateURL(endpoint, what: "token endpoint")
        } catch {
            throw Problem("token_endpoint \(quoted(endpoint)): \(error.reason)")
        }
        if issuer.lowercased().hasPrefix("https://") && !endpoint.lowercased().hasPrefix("https://") {
            throw Problem("token_endpoint \(quoted(endpoint)) is not https, but the issuer is")
        }
        return endpoint
    }

    /// Printable, bounded text from the metadata.
    static func quoted(_ text: String) -> String {
        "\"" + sanitize(text, removing: [], limit: 200) + "\""
    }
}

extension TokenExchangeError {
    /// The text after the kind, for messages that give their own context.
    var reason: String {
        switch self {
        case .invalidRequest(let text), .malformedResponse(let text): text
        case .unreachable(let text): "unreachable: \(text)"
        case .timedOut(let text): "timed out: \(text)"
        default: description
        }
    }
}
