import Foundation
import Testing

@testable import CalloutCore

/// Named and external credentials are found through an index: by any spelling of their name,
/// the first of a repeated name, and in step with changes to the lists.
@Suite struct NameIndexTests {
    static func named(_ name: String, _ external: String = "Acme_API") -> NamedCredentialConfig {
        NamedCredentialConfig(
            name: name, url: URL(string: "https://\(name.lowercased()).example")!, externalCredential: external)
    }

    @Test func caseInsensitiveNamesHashAndCompareAlike() {
        #expect(CaseInsensitiveName("Acme_API") == CaseInsensitiveName("acme_api"))
        #expect(CaseInsensitiveName("Acme_API").hashValue == CaseInsensitiveName("ACME_API").hashValue)
        #expect(CaseInsensitiveName("Acme") != CaseInsensitiveName("Acme2"))
        // Only ASCII letters fold: `[` (0x5B) is not `{` (0x7B).
        #expect(CaseInsensitiveName("a[") != CaseInsensitiveName("a{"))
        let long = String(repeating: "Segment_", count: 8)
        #expect(CaseInsensitiveName(long) == CaseInsensitiveName(long.uppercased()))
    }

    @Test func loadedConfigurationFindsCredentialsInAnyCase() throws {
        let config = try ConfigLoader.load(text: validConfig)
        #expect(config.namedCredential("aCmE")?.name == "Acme")
        #expect(config.namedCredentialName("ACME") == "Acme")
        #expect(config.externalCredential("ACME_api")?.name == "Acme_API")
        #expect(config.namedCredential("Acme2") == nil)
        #expect(config.namedCredentialName("") == nil)
        #expect(config.externalCredential("Acme") == nil)
    }

    @Test func everyOneOfAThousandIsFoundAtItsPlace() {
        let names = (0..<1000).map { "Filler_\($0)" }
        let config = ProxyConfig(namedCredentials: names.map { Self.named($0) })
        for name in names {
            #expect(config.namedCredential(name.uppercased())?.name == name)
        }
        #expect(config.namedCredential("Filler_1000") == nil)
    }

    @Test func aRepeatedNameResolvesToItsFirstEntry() {
        let config = ProxyConfig(namedCredentials: [Self.named("Acme", "First"), Self.named("ACME", "Second")])
        #expect(config.namedCredential("acme")?.externalCredential == "First")
    }

    @Test func theIndexFollowsChangesToTheLists() {
        var config = ProxyConfig(namedCredentials: [Self.named("Acme")])
        config.namedCredentials.append(Self.named("Globex"))
        #expect(config.namedCredential("globex")?.name == "Globex")
        config.namedCredentials.removeFirst()
        #expect(config.namedCredential("acme") == nil)
        #expect(config.namedCredential("GLOBEX")?.name == "Globex")

        let copy = config
        config.namedCredentials[0] = Self.named("Initech")
        #expect(config.namedCredential("initech")?.name == "Initech")
        #expect(config.namedCredential("globex") == nil)
        // The copy kept its own list and index.
        #expect(copy.namedCredential("globex")?.name == "Globex")
        #expect(copy.namedCredential("initech") == nil)

        config.externalCredentials = [
            ExternalCredentialConfig(
                name: "Initech_API", identityProviderURL: URL(string: "https://idp.example/token")!,
                signingCertificate: "Signing")
        ]
        #expect(config.externalCredential("initech_api")?.name == "Initech_API")
    }
}
