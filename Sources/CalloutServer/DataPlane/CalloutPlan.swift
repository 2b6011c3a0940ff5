import CalloutCore
import CalloutTokens
import NIOCore
import NIOHTTP1

/// Everything needed to build the upstream request, fixed once per callout. A class: the
/// exchange's callbacks share it without copying its configuration values.
final class CalloutPlan: Sendable {
    let named: NamedCredentialConfig
    /// What the token source is asked for; the credential, principal and caller are read from
    /// it, held once per callout.
    let demand: TokenDemand
    var credential: ExternalCredentialConfig { _read { yield demand.credential } }
    var principal: PrincipalConfig { _read { yield demand.principal } }
    var identity: CallerIdentity { _read { yield demand.identity } }
    let head: HTTPRequestHead
    let incoming: [(String, String)]
    let targetURL: String
    /// The path and query sent upstream.
    let requestTarget: String
    let maxFormulaValueLength: Int
    let isIdentityHeader: @Sendable (String) -> Bool
    let upstream: UpstreamTarget

    static let via = "1.1 callout-proxy"

    init(
        named: NamedCredentialConfig, demand: TokenDemand, head: HTTPRequestHead, incoming: [(String, String)],
        targetURL: String, requestTarget: String, maxFormulaValueLength: Int,
        isIdentityHeader: @escaping @Sendable (String) -> Bool, upstream: UpstreamTarget
    ) {
        self.named = named
        self.demand = demand
        self.head = head
        self.incoming = incoming
        self.targetURL = targetURL
        self.requestTarget = requestTarget
        self.maxFormulaValueLength = maxFormulaValueLength
        self.isIdentityHeader = isIdentityHeader
        self.upstream = upstream
    }

    /// A token is needed to inject it, or when a formula in a header may read it.
    var needsToken: Bool {
        named.generateAuthorizationHeader || named.allowFormulasInHeaders || named.allowFormulasInBody
            || named.customHeaders.contains { $0.value.referencesSecrets }
    }

    func formulaContext(token: IssuedToken?, allowSecrets: Bool) -> FormulaContext {
        let parameters = credential.formulaParameters(
            principal: principal, accessToken: token?.accessToken, tokenType: token?.tokenType ?? "Bearer",
            scope: token?.scope)
        return FormulaContext(
            user: identity.user, credentials: [credential.name: parameters], allowSecrets: allowSecrets,
            namedCredentialName: named.name, namedCredentialURL: named.url.absoluteString,
            maxValueLength: maxFormulaValueLength)
    }

    /// Evaluates `{!...}` blocks in a buffered textual body when the named credential allows it
    /// (bodies larger than `retry_body_buffer_bytes` are streamed and never evaluated).
    func renderBody(_ body: ByteBuffer?, token: IssuedToken?) throws -> ByteBuffer? {
        guard named.allowFormulasInBody, var body,
            BodyTemplate.isTextual(contentType: incoming.first { $0.0.lowercased() == "content-type" }?.1)
        else { return body }
        let bytes = body.readBytes(length: body.readableBytes) ?? []
        guard BodyTemplate.containsBlocks(bytes) else { return ByteBuffer(bytes: bytes) }
        var context = formulaContext(token: token, allowSecrets: true)
        context.use = .callerWritten
        switch BodyTemplate.render(bytes, context: context) {
        case .success(let rendered): return ByteBuffer(bytes: rendered)
        case .failure(let failure):
            throw Problem.formulaFailed(named.name, location: "request body", message: failure.description)
        }
    }

    /// The upstream request head. `bodyLength`: the exact length of a buffered body (0 for
    /// none), or `nil` for a streamed body of unknown length (sent chunked).
    func requestHead(token: IssuedToken?, bodyLength: Int64?) throws -> HTTPRequestHead {
        // Custom headers: the named credential's, then the external credential's.
        var custom: [(String, String)] = []
        if !named.customHeaders.isEmpty || !credential.customHeaders.isEmpty {
            let secretsContext = formulaContext(token: token, allowSecrets: named.allowFormulasInHeaders)
            let plainContext = formulaContext(token: token, allowSecrets: false)
            for (h, fromNamed) in OutboundHeaders.customHeaderOrder(
                named: named.customHeaders, external: credential.customHeaders)
            {
                let location =
                    fromNamed
                    ? "named_credential \(named.name) custom_header \(h.name)"
                    : "external_credential \(credential.name) custom_header \(h.name)"
                custom.append((h.name, try evaluate(h.value, fromNamed ? secretsContext : plainContext, location)))
            }
        }
        var incoming = self.incoming
        if named.allowFormulasInHeaders {
            var secretsContext = formulaContext(token: token, allowSecrets: true)
            secretsContext.use = .callerWritten
            for i in incoming.indices where incoming[i].1.contains("{!") && !isIdentityHeader(incoming[i].0) {
                let formula: Formula
                do { formula = try Formula(parsing: incoming[i].1) } catch {
                    throw Problem.formulaFailed(
                        named.name, location: "request header \(incoming[i].0)", message: error.description)
                }
                incoming[i].1 = try evaluate(formula, secretsContext, "request header \(incoming[i].0)")
            }
        }
        let authorization = named.generateAuthorizationHeader ? token?.authorizationValue : nil
        var headers = HTTPHeaders(
            OutboundHeaders.build(
                incoming: incoming, isIdentityHeader: isIdentityHeader, customHeaders: custom,
                authorization: authorization, host: upstream.hostHeader, via: CalloutPlan.via,
                decrementMaxForwards: head.method == .OPTIONS))
        switch bodyLength {
        case .none:
            headers.add(name: "Transfer-Encoding", value: "chunked")
        case .some(let n) where n > 0 || Self.expectsBody(head.method):
            headers.add(name: "Content-Length", value: String(n))
        case .some:
            break
        }
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: requestTarget, headers: headers)
    }

    /// Methods whose requests carry a body by convention get `Content-Length: 0` when empty.
    private static func expectsBody(_ method: HTTPMethod) -> Bool {
        method == .POST || method == .PUT || method == .PATCH
    }

    private func evaluate(_ formula: Formula, _ context: FormulaContext, _ location: String) throws -> String {
        do {
            return try formula.evaluate(in: context)
        } catch {
            throw Problem.formulaFailed(named.name, location: location, message: error.description)
        }
    }
}
