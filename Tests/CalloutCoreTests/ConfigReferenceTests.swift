import CalloutCore
import Foundation
import Testing

/// Every key the loader reads must be shown in proxy.conf.example and documented in
/// docs/configuration.md, so neither can drift from the code.
@Suite struct ConfigReferenceTests {
    /// The repository root: three levels above this file (Tests/CalloutCoreTests/<file>).
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func read(_ relativePath: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(relativePath), encoding: .utf8)
    }

    /// Keys named in ConfigBuilder.swift and its extensions (ConfigBuilder+….swift): the quoted
    /// first argument of every cursor read (`t.string("…")`, `int`, `bool`, `requiredString`,
    /// `stringArray`, `stringList`, `intArray`, `double`, `table`, `tables`, `has`, `consume`,
    /// `validName(t, "…")`) and of the header-name settings loop
    /// (`("permission_sets_header", \ProxySettings…)`), and the numeric `[proxy]` settings of
    /// ``ProxySettingTable``, which the builder reads by name.
    static func loaderKeys() throws -> Set<String> {
        let folder = root.appendingPathComponent("Sources/CalloutCore/Config")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasPrefix("ConfigBuilder") && $0.hasSuffix(".swift") }.sorted()
        let source = try files.map { try read("Sources/CalloutCore/Config/" + $0) }.joined(separator: "\n")
        let patterns = [
            #"\.(?:string|int|bool|requiredString|stringArray|stringList|intArray|double|table|tables|has|consume)\("([a-z][a-z0-9_]*)""#,
            #"validName\(\w+, "([a-z][a-z0-9_]*)""#,
            #"\("([a-z][a-z0-9_]*)", \\"#,
        ]
        var keys = Set(ProxySettingTable.numeric.map(\.name))
        for pattern in patterns {
            let regex = try NSRegularExpression(pattern: pattern)
            let range = NSRange(source.startIndex..., in: source)
            for match in regex.matches(in: source, range: range) {
                if let r = Range(match.range(at: 1), in: source) { keys.insert(String(source[r])) }
            }
        }
        return keys
    }

    @Test func theExtractorFindsTheLoadersKeys() throws {
        let keys = try Self.loaderKeys()
        // Guards the regular expressions: if they stopped matching, the other tests would pass vacuously.
        for known in [
            "listen", "permission_sets_header", "token_refresh_ahead_ratio", "trusted_callers", "caller",
            "private_key_file", "identity_provider_url", "jwt_claims", "principal", "sequence_number",
            "additional_refresh_status_codes", "named_credential", "custom_header", "allow_insecure_http",
        ] {
            #expect(keys.contains(known), "\(known)")
        }
        #expect(keys.count >= 55, "only \(keys.count) keys found: \(keys.sorted())")
    }

    @Test func everyKeyIsShownInTheExampleConfiguration() throws {
        let example = try Self.read("proxy.conf.example")
        for key in try Self.loaderKeys().sorted() {
            // `key = …` (possibly commented out), or a table header such as `[[external_credential.principal]]`.
            let pattern = #"(?m)(^|[\s#\[.])"# + key + #"(\s*=|\]\]?)"#
            #expect(example.range(of: pattern, options: .regularExpression) != nil, "proxy.conf.example lacks \(key)")
        }
    }

    @Test func everyKeyIsDocumentedInTheConfigurationReference() throws {
        let reference = try Self.read("docs/configuration.md")
        for key in try Self.loaderKeys().sorted() {
            // `key`, or a table heading such as `[proxy]`, `[[caller]]`, `[external_credential.jwt_claims]`.
            let pattern = "`(\\[{1,2}([a-z_]+\\.)?)?" + key + "(\\]{1,2})?`"
            #expect(
                reference.range(of: pattern, options: .regularExpression) != nil,
                "docs/configuration.md lacks `\(key)`")
        }
    }

    @Test func theReferenceShowsEachNumericSettingsTypeAndDefault() throws {
        let rows = try Self.read("docs/configuration.md").split(separator: "\n")
        for setting in ProxySettingTable.numeric {
            let row = try #require(rows.first { $0.hasPrefix("| `\(setting.name)` |") }, "\(setting.name)")
            let columns = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            #expect(columns.count >= 4, "\(setting.name)")
            guard columns.count >= 4 else { continue }
            #expect(columns[1] == setting.typeText, "\(setting.name)")
            #expect(columns[2].hasPrefix("`\(setting.defaultText)`"), "\(setting.name): \(columns[2])")
        }
    }

    @Test func theTableReadsEachSettingIntoItsOwnField() {
        // Every setting set to its upper bound lands in its own field and nowhere else.
        for setting in ProxySettingTable.numeric {
            var settings = ProxySettings()
            switch setting.value {
            case .integer(let path, let range): settings[keyPath: path] = range.upperBound
            case .number(let path, let range): settings[keyPath: path] = range.upperBound
            }
            let changed = ProxySettingTable.numeric.filter { $0.value(in: settings) != $0.value(in: ProxySettings()) }
            #expect(changed.map(\.name) == [setting.name])
        }
        let restartOnly = Set(ProxySettingTable.restartOnly.map(\.0))
        #expect(restartOnly.contains("request_timeout_seconds") && restartOnly.contains("access_log"))
        #expect(!restartOnly.contains("max_connections"))
    }
}
