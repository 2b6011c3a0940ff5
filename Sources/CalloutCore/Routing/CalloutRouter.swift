/// The decisions taken from a request head alone, before any body byte is read or any token
/// fetched: which named credential, which endpoint URL, who is calling, which principal.
/// Shared by the data plane and `explain`.
public struct RoutedCallout: Sendable {
    public let named: NamedCredentialConfig
    public let credential: ExternalCredentialConfig
    public let targetURL: String
    public let identity: CallerIdentity
    /// Principals the caller qualifies for, lowest sequence number first.
    public let candidates: [PrincipalConfig]
    public let principal: PrincipalConfig
}

public enum CalloutRouter {
    /// `alias` is filled as soon as it is known, so refusals can name it in logs.
    /// `httpVersion`: the request's; an HTTP/1.1 request must carry exactly one `Host`.
    public static func route(
        config: ProxyConfig, identityResolver: IdentityResolver, method: String, target: String,
        headers: [(String, String)], peer: [UInt8]?, httpVersion: (major: Int, minor: Int) = (1, 1),
        alias: inout String?
    ) -> Result<RoutedCallout, Problem> {
        let host: String?
        switch RequestScreen.screen(
            config: config, method: method, target: target, headers: headers, httpVersion: httpVersion)
        {
        case .failure(let problem): return .failure(problem)
        case .success(let h): host = h
        }
        let address: CalloutAddress
        switch CalloutAddressing.address(method: method, target: target, host: host) {
        case .success(let a): address = a
        case .failure(.connectNotSupported): return .failure(.connect())
        case .failure(.noAlias): return .failure(.unknownNamedCredential(nil))
        case .failure(.unsupportedScheme(let s)):
            return .failure(
                .badRequest(
                    "absolute-form targets must use http:// (the proxy adds TLS); got \(CallerText.printable(s))://"))
        case .failure(.malformedTarget(let why)): return .failure(.badRequest(why))
        }
        alias = address.alias
        guard let named = config.namedCredential(address.alias) else {
            return .failure(.unknownNamedCredential(address.alias))
        }
        alias = named.name
        guard named.enabled else { return .failure(.disabled(named.name)) }
        guard let credential = config.externalCredential(named.externalCredential) else {
            return .failure(.unknownNamedCredential(address.alias))
        }
        let targetURL: String
        switch URLJoin.join(base: named.url.absoluteString, path: address.path, query: address.query) {
        case .success(let u): targetURL = u
        case .failure(.escapesBasePath):
            return .failure(.badRequest("the path climbs above the named credential's base path", alias: named.name))
        case .failure(.ambiguousPath):
            return .failure(.badRequest("the path contains encoded separators or NUL", alias: named.name))
        }
        let identity: CallerIdentity
        switch identityResolver.resolve(peer: peer, headers: headers) {
        case .success(let i): identity = i
        case .failure(.proxyAuthenticationRequired): return .failure(.proxyAuthenticationRequired())
        case .failure(.badIdentityHeader(let why)): return .failure(.badRequest(why, alias: named.name))
        }
        let candidates = PrincipalResolver.candidates(credential, for: identity)
        switch PrincipalResolver.choose(among: candidates, requested: identity.requestedPrincipal) {
        case .success(let principal):
            return .success(
                RoutedCallout(
                    named: named, credential: credential, targetURL: targetURL, identity: identity,
                    candidates: candidates, principal: principal))
        case .failure(.noPrincipal):
            return .failure(
                .noPrincipal(named.name, credential: credential.name, identity: identity, settings: config.proxy))
        case .failure(.requestedPrincipalNotAllowed(let r)):
            return .failure(.principalNotAllowed(named.name, requested: r))
        }
    }
}
