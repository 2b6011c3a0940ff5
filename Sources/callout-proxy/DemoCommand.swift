import ArgumentParser
import CalloutCore
import CalloutDevTools
import CalloutServer
import CalloutTokens
import Foundation
import Logging
import UnixSignals

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Offline demo: a development identity provider, an HTTPS echo API and the proxy, all on loopback.",
        discussion: """
            Generates an ephemeral RSA signing key, certificate and TLS certificate authority in a temporary \
            folder; starts a development identity provider that verifies client assertions (signature, aud, \
            exp, jti) and issues short-lived tokens, an HTTPS echo API that accepts only those tokens, and \
            the proxy with a demo configuration (principals Admin and Reader, a per-user scope formula, the \
            named credential Acme). Prints commands to try; --run-sample performs them. Serves until \
            Ctrl-C, then stops everything and deletes the temporary folder.
            """
    )

    @Option(help: "Address the proxy listens on (HOST:PORT); 127.0.0.1:0 picks a free port.")
    var listen: String = "127.0.0.1:8080"

    @Flag(help: "Perform the sample callouts and print what happened.")
    var runSample = false

    @Flag(help: "Run the sample callouts, then exit: 0 if every outcome matched, 1 otherwise (tests, CI).")
    var exitAfterSample = false

    func validate() throws {
        guard HostPort(parsing: listen) != nil else {
            throw ValidationError("--listen must be HOST:PORT or [IPv6]:PORT, got '\(listen)'")
        }
    }

    func run() async throws {
        var stderr = StandardError()
        let env = try await LocalEnvironment.start(clientIds: DemoSetup.principals.map(\.clientId))
        let service: CalloutProxyService
        let observer = DemoObserver()
        let configFile = env.directory.appendingPathComponent("demo.conf")
        do {
            try Data(DemoSetup.configuration(env, listen: listen).utf8).write(to: configFile)
            let config = try ConfigLoader.load(path: configFile.path)
            let materials = try CredentialMaterials.load(config)
            var logger = Logger(
                label: "callout-proxy.demo", factory: { StreamLogHandler.standardError(label: $0) })
            logger.logLevel = .warning
            service = try await CalloutProxyService.start(
                config: config, materials: materials, logger: logger, observer: observer)
        } catch {
            await env.shutdown()
            print("demo: cannot start the proxy on \(listen): \(Self.describe(error))", to: &stderr)
            print("demo: is the port in use? Try --listen 127.0.0.1:0 for a free port.", to: &stderr)
            throw ExitCode(1)
        }
        let running = Task { try await service.run() }
        // Ctrl-C (SIGINT) or SIGTERM at any point: stop serving, then clean up below.
        // A second signal while shutting down exits at once.
        let arrivals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        let signals = Task {
            var shuttingDown = false
            for await signal in arrivals {
                if shuttingDown { Foundation.exit(130) }
                shuttingDown = true
                say("received \(signal), shutting down")
                service.beginShutdown()
            }
        }
        let proxyURL = service.proxyURL
        say(DemoSetup.banner(env, proxyURL: proxyURL, configFile: configFile.path))
        say(DemoSetup.tryIt(proxyURL: proxyURL, configFile: configFile.path))

        var allMatched = true
        if runSample || exitAfterSample {
            let sample = DemoSample(env: env, proxy: service, observer: observer)
            allMatched = await sample.run(say: say)
        }
        if exitAfterSample {
            service.beginShutdown()
        } else {
            observer.startAccessLog(say: say)
            say("Serving on \(proxyURL); each callout is listed below. Stop with Ctrl-C.")
        }
        _ = try? await running.value
        signals.cancel()
        await service.close()
        await env.shutdown()
        say("stopped: proxy, identity provider and echo API are down; \(env.directory.path) is deleted")
        if exitAfterSample && !allMatched { throw ExitCode(1) }
    }

    private static func describe(_ error: any Error) -> String {
        if let config = error as? ConfigError {
            return config.issues.map(\.description).joined(separator: "; ")
        }
        return "\(error)"
    }
}

/// Writes text and a newline to standard output at once (unbuffered, also into a pipe).
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

/// The demo's fixed cast: principals, headers and the configuration text.
enum DemoSetup {
    struct Principal {
        let name: String
        let sequence: Int
        let clientId: String
        let permissionSet: String
    }

    static let principals = [
        Principal(name: "Admin", sequence: 1, clientId: "acme-admin", permissionSet: "Acme_Admins"),
        Principal(name: "Reader", sequence: 2, clientId: "acme-reader", permissionSet: "Acme_Readers"),
    ]
    static let scopeFormula = #"{!"session:role:" + $User.Department}"#

    static func principal(named name: String?) -> Principal? {
        principals.first { $0.name == name }
    }

    static func principal(clientId: String?) -> Principal? {
        principals.first { $0.clientId == clientId }
    }

    static func configuration(_ env: LocalEnvironment, listen: String) -> String {
        var text = """
            # callout-proxy demo configuration: generated, deleted when the demo stops.
            # Keys, certificates and the CA next to this file are ephemeral and local.

            """
        text += env.baseConfiguration(
            listen: listen, adminListen: "off",
            extraProxySettings: #"trusted_callers = ["127.0.0.1/32", "::1/128"]"#)
        text += """
            [[external_credential]]
            name = "Acme_API"
            label = "Acme API (demo)"
            authentication_protocol = "oauth2"
            authentication_flow = "client_credentials_jwt_assertion"
            identity_provider_url = "\(env.identityProvider.tokenEndpointURL)"
            signing_certificate = "Local_Signing"
            signing_algorithm = "RS256"
            scope = '\(scopeFormula)'
            jwt_expiration_seconds = 120

            """
        for p in principals {
            text += """

                  [[external_credential.principal]]
                  name = "\(p.name)"
                  sequence_number = \(p.sequence)
                  client_id = "\(p.clientId)"
                  permission_sets = ["\(p.permissionSet)"]

                """
        }
        text += """

            [[named_credential]]
            name = "Acme"
            label = "Acme echo API (demo)"
            url = "\(env.upstream.baseURL)/v2"
            external_credential = "Acme_API"

              [[named_credential.custom_header]]
              name = "X-Api-Version"
              value = "2"

            """
        return text
    }

    static func banner(_ env: LocalEnvironment, proxyURL: String, configFile: String) -> String {
        var lines = [
            "callout-proxy demo — everything on loopback, generated fresh, deleted on exit",
            "",
            "  identity provider  \(env.identityProvider.tokenEndpointURL)",
            "                     verifies each client assertion (RS256 signature, aud, exp, jti) and issues",
            "                     tokens that live \(env.identityProvider.configuration.expiresIn) s",
            "  echo API           \(env.upstream.baseURL)  (HTTPS; accepts only tokens that identity provider issued)",
            "  proxy              \(proxyURL)",
            "  configuration      \(configFile)",
            "",
            "  named credential Acme -> \(env.upstream.baseURL)/v2 via external credential Acme_API",
            "  scope formula      \(scopeFormula)",
        ]
        for p in principals {
            lines.append(
                "  principal \(p.name.padding(toLength: 7, withPad: " ", startingAt: 0)) sequence \(p.sequence)  "
                    + "client_id \(p.clientId.padding(toLength: 12, withPad: " ", startingAt: 0)) "
                    + "for permission set \(p.permissionSet)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func tryIt(proxyURL: String, configFile: String) -> String {
        """
        Try it from another terminal:

          # forward-proxy form (curl -x = HTTP_PROXY): Reader, scope session:role:Finance -> 200;
          # the echoed JSON shows "authorization": "Bearer …" and "token_valid": true
          curl -s -x \(proxyURL) -H 'X-Callout-Permission-Sets: Acme_Readers' \\
               -H 'X-Callout-User-Department: Finance' 'http://Acme/items?x=1'

          # path form, for clients without proxy support: both sets -> Admin (sequence 1 wins)
          curl -s -H 'X-Callout-Permission-Sets: Acme_Admins, Acme_Readers' \\
               -H 'X-Callout-User-Department: Engineering' \(proxyURL)/callout:Acme/orders

          # no permission set -> 403 application/problem+json, "code": "no_principal"
          curl -s -i -x \(proxyURL) http://Acme/items

          # dry run: how a request would be routed, without calling anything
          swift run callout-proxy explain --config \(configFile) \\
               -H 'X-Callout-Permission-Sets: Acme_Readers' GET http://Acme/items

        """
    }
}
