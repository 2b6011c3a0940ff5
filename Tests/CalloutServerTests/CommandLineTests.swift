import CalloutDevTools
import Foundation
import Testing

/// Runs the binary with arguments; returns exit status, standard output and standard error.
func runCLI(_ arguments: [String], environment: [String: String] = [:]) throws -> (
    status: Int32, out: String, err: String
) {
    let process = Process()
    guard let binary = DemoTests.binary() else { throw CocoaError(.fileNoSuchFile) }
    process.executableURL = binary
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    process.environment = env
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (
        process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self)
    )
}

@Suite(.serialized) struct CommandLineTests {
    func repositoryRoot() -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    @Test func checkAcceptsTheShippedExample() throws {
        let example = repositoryRoot().appendingPathComponent("proxy.conf.example").path
        let r = try runCLI(["check", "--config", example])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("principals by sequence"))
        #expect(r.out.contains("Acme -> https://api.acme.example/v2"))
    }

    @Test func checkListsEveryProblemWithLocations() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString).conf")
        defer { try? FileManager.default.removeItem(at: file) }
        try """
        [proxy]
        listen = "nowhere"

        [[external_credential]]
        name = "Bad Name"
        identity_provider_url = "http://idp.example/token"
        signing_certificate = "Missing"
        """.write(to: file, atomically: true, encoding: .utf8)
        let r = try runCLI(["check", "--config", file.path])
        #expect(r.status == 1)
        #expect(r.err.contains("\(file.path):2: proxy.listen: "))
        #expect(r.err.contains("\(file.path):5: external_credential[0].name: "))
        #expect(r.err.contains("\(file.path):6: external_credential[0].identity_provider_url: "))
        #expect(r.err.contains("problems found"))
    }

    @Test func checkPrintsWarningsAndStillAccepts() throws {
        let env = try LocalEnvironmentFiles()
        defer { env.remove() }
        let path = try env.config()
        let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(
            of: #"signing_certificate = "Signing""#,
            with: "signing_certificate = \"Signing\"\nadditional_refresh_status_codes = [401]")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let r = try runCLI(["check", "--config", path])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("warning: \(path):"))
        #expect(r.err.contains("additional_refresh_status_codes[0]: 401 always refreshes"))
    }

    @Test func checkReportsAKeyFileProblemWithoutItsContents() throws {
        let env = try LocalEnvironmentFiles()
        defer { env.remove() }
        let r = try runCLI([
            "check", "--config", env.config(keyFile: env.directory.appendingPathComponent("absent.pem").path),
        ])
        #expect(r.status == 1)
        #expect(r.err.contains("certificate[0].private_key_file"))
    }

    @Test func tokenPerformsTheRealExchangeAndAssertionPrintsClaims() async throws {
        let env = try await LocalEnvironment.start(clientIds: ["acme-reader"])
        let file = env.directory.appendingPathComponent("cli.conf")
        try
            (env.baseConfiguration() + """
                [[external_credential]]
                name = "Acme_API"
                identity_provider_url = "\(env.identityProvider.tokenEndpointURL)"
                signing_certificate = "Local_Signing"
                scope = '{!"role:" + $User.Department}'

                  [[external_credential.principal]]
                  name = "Reader"
                  sequence_number = 1
                  client_id = "acme-reader"
                  permission_sets = ["Readers"]
                """).write(to: file, atomically: true, encoding: .utf8)
        let token = try runCLI([
            "token", "Acme_API", "--permission-sets", "Readers", "--user", "Department=Ops", "--json", "--config",
            file.path,
        ])
        let assertion = try runCLI(["assertion", "Acme_API", "--principal", "Reader", "--config", file.path])
        let unknown = try runCLI(["token", "Nope", "--config", file.path])
        let idpRequests = env.identityProvider.requests
        await env.shutdown()
        #expect(token.status == 0, "\(token.err)")
        let json = try JSONSerialization.jsonObject(with: Data(token.out.utf8)) as? [String: Any]
        #expect(json?["principal"] as? String == "Reader")
        #expect(json?["scope"] as? String == "role:Ops")
        #expect((json?["access_token"] as? String)?.isEmpty == false)
        #expect(idpRequests.count == 1)
        #expect(idpRequests.first?.scope == "role:Ops")
        #expect(assertion.status == 0)
        #expect(assertion.out.contains("\"alg\" : \"RS256\""))
        #expect(assertion.out.contains("\"iss\" : \"acme-reader\""))
        #expect(unknown.status != 0)
        #expect(unknown.err.contains("no external credential is named 'Nope'"))
    }
}

/// Key files and a config in a temporary folder, without servers.
struct LocalEnvironmentFiles {
    let directory: URL
    let keyFile: String
    let certificateFile: String

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(UUID().uuidString)")
        let identity = try DevelopmentPKI.generateSigningIdentity(commonName: "cli")
        let (key, certificate) = try identity.write(to: directory, baseName: "cli")
        keyFile = key.path
        certificateFile = certificate.path
    }

    func config(keyFile: String? = nil) throws -> String {
        let file = directory.appendingPathComponent("cli.conf")
        try """
        [[certificate]]
        name = "Signing"
        private_key_file = "\(keyFile ?? self.keyFile)"

        [[external_credential]]
        name = "Acme_API"
        identity_provider_url = "https://127.0.0.1:1/token"
        signing_certificate = "Signing"

          [[external_credential.principal]]
          name = "Reader"
          sequence_number = 1
          client_id = "acme-reader"
          permission_sets = ["Readers"]
        """.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}
