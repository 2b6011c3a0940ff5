import ArgumentParser
import AsyncHTTPClient
import CalloutCore
import CalloutServer
import CalloutTokens
import Foundation
import Logging
import NIOPosix

/// How the token and assertion commands pick the principal and the caller's attributes.
struct PrincipalSelection: ParsableArguments {
    @Argument(help: "External credential name.") var externalCredential: String

    @Option(help: "Act as this principal.") var principal: String?

    @Option(help: "Comma-separated permission sets: the principal is chosen as for a callout.")
    var permissionSets: String?

    @Option(help: "The caller's profile.") var profile: String?

    @Option(name: .customLong("user"), help: "A $User field, Field=Value (repeatable).")
    var userFields: [String] = []

    func demand(in config: ProxyConfig) throws -> TokenDemand {
        guard let credential = config.externalCredential(externalCredential) else {
            let known = config.externalCredentials.map(\.name).joined(separator: ", ")
            throw CommandError("no external credential is named '\(externalCredential)' (known: \(known))")
        }
        var user: [String: String] = [:]
        for field in userFields {
            guard let eq = field.firstIndex(of: "="), eq != field.startIndex else {
                throw ValidationError("--user takes Field=Value, got '\(field)'")
            }
            user[String(field[..<eq])] = String(field[field.index(after: eq)...])
        }
        let identity = CallerIdentity(
            permissionSets: permissionSets.map {
                $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            } ?? [],
            profile: profile, user: user, requestedPrincipal: principal)
        let chosen: PrincipalConfig
        if let principal, permissionSets == nil, profile == nil {
            guard let p = credential.principal(principal) else {
                throw CommandError(
                    "external credential '\(credential.name)' has no principal '\(principal)' (known: \(credential.principals.map(\.name).joined(separator: ", ")))"
                )
            }
            chosen = p
        } else if permissionSets == nil && profile == nil {
            guard let first = credential.principals.first else {
                throw CommandError("external credential '\(credential.name)' has no principals")
            }
            chosen = first
        } else {
            switch PrincipalResolver.choose(credential, for: identity) {
            case .success(let p): chosen = p
            case .failure(.noPrincipal):
                throw CommandError(
                    "those permission sets and profile qualify for no principal of '\(credential.name)'")
            case .failure(.requestedPrincipalNotAllowed(let r)):
                throw CommandError("the caller does not qualify for principal '\(r)'")
            }
        }
        return TokenDemand(credential: credential, principal: chosen, identity: identity, namedCredential: nil)
    }
}

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Perform the real token exchange for a principal and print the access token.",
        discussion:
            "Without --principal, --permission-sets or --profile, the principal with the lowest sequence number is used."
    )

    @OptionGroup var options: ConfigOption
    @OptionGroup var selection: PrincipalSelection
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        var logger = Logger(label: "callout-proxy")
        // A failed exchange is printed once, below, not also as a log line.
        logger.logLevel = .error
        let (config, materials) = try loadOrExit(options)
        printWarnings(config)
        let demand = try selection.demand(in: config)
        let client = IdentityProviderHTTPClient.make(
            settings: config.proxy, materials: materials, eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        let service = TokenService(
            cache: TokenCache(), client: TokenEndpointClient(httpClient: client, logger: logger),
            materials: { materials }, settings: { config.proxy }, logger: logger)
        let prepared: TokenPreparation.Prepared
        let token: AccessToken
        do {
            prepared = try service.prepare(demand)
            token = try await service.refresh(demand)
            service.discovery.shutdown()
            try await client.shutdown()
        } catch let problem as Problem {
            service.discovery.shutdown()
            try? await client.shutdown()
            var stderr = StandardError()
            print("\(problem.code): \(problem.detail)", to: &stderr)
            throw ExitCode(1)
        }
        let granted = token.scope ?? prepared.scope
        if json {
            var fields: [String: JSONValue] = [
                "access_token": .string(token.value), "token_type": .string(token.tokenType),
                "expires_in": .integer(Int64(token.lifetime)), "principal": .string(demand.principal.name),
                "client_id": .string(demand.principal.clientId),
            ]
            if let granted { fields["scope"] = .string(granted) }
            print(JSONValue.object(fields).jsonText)
        } else {
            print("principal:    \(demand.principal.name) (client id \(demand.principal.clientId))")
            print("token type:   \(token.tokenType)")
            print("expires in:   \(Int(token.lifetime)) s")
            print("scope:        \(granted ?? "(none)")")
            print("access token: \(token.value)")
        }
    }
}

struct AssertionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assertion",
        abstract:
            "Print the signed client assertion and its decoded header and claims, without calling the identity provider."
    )

    @OptionGroup var options: ConfigOption
    @OptionGroup var selection: PrincipalSelection

    func run() throws {
        let (config, materials) = try loadOrExit(options)
        printWarnings(config)
        let demand = try selection.demand(in: config)
        guard demand.credential.flow.signsJWT else {
            throw CommandError(
                "external credential '\(demand.credential.name)' uses authentication_flow \"\(demand.credential.flow.rawValue)\", which signs no assertion"
            )
        }
        var stderr = StandardError()
        if let issuer = demand.credential.identityProviderIssuer {
            print(
                "note: the token endpoint is discovered from \(issuer.absoluteString); offline, aud is the issuer (the proxy uses the discovered token endpoint)",
                to: &stderr)
        }
        let preparation = TokenPreparation(config: config, materials: materials)
        do {
            let (jwt, _) = try preparation.assertion(for: demand)
            // The proxy's own assertion, shown as signed: header and claims, keys sorted.
            let segments = jwt.split(separator: ".")
            for (title, segment) in zip(["header:", "claims:"], segments) {
                print(title)
                print(Base64URL.decode(segment).flatMap(JSONValue.parse)?.prettyJSONText ?? "(not JSON)")
            }
            print("assertion:")
            print(jwt)
        } catch let problem as Problem {
            print("\(problem.code): \(problem.detail)", to: &stderr)
            throw ExitCode(1)
        }
    }
}

/// A command that cannot do what was asked: printed as `error: <message>` without a usage
/// line, since the arguments were well-formed.
struct CommandError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) { self.description = description }
}
