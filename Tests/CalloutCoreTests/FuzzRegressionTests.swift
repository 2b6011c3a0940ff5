import Foundation
import Testing

@testable import CalloutCore

/// Inputs the fuzz targets in `Fuzz/` (see `scripts/fuzz.sh`) found or that guard the same
/// invariants: parsing never traps, joined URLs never leave the base path, formula values never
/// carry CR, LF or NUL.
@Suite struct FuzzRegressionTests {
    static let base = "https://api.example/v2"

    /// The FuzzAddressing harness, as a function.
    static func address(_ method: String, _ target: String, host: String?) -> String? {
        guard case .success(let address) = CalloutAddressing.address(method: method, target: target, host: host),
            case .success(let url) = URLJoin.join(base: base, path: address.path, query: address.query)
        else { return nil }
        return url
    }

    @Test(arguments: [
        "/callout:Acme/%2e%2e", "/callout:Acme/.%2e/", "/callout:Acme/%252e%252e/x", "/callout:Acme/a/%2e%2e/%2e%2e",
        "/callout:Acme//..//..", "/callout:Acme/%", "/callout:Acme/%2", "/callout:Acme/%zz/..", "/callout:Acme/%ff%fe",
        "http://Acme/%2e%2e?x=/../", "http://Acme:/a", "http://Acme:99999999999999999999/a", "/callout:Acme?/..",
    ])
    func joinedURLsStayUnderTheBase(target: String) {
        if let url = Self.address("GET", target, host: nil) {
            #expect(url == Self.base || url.hasPrefix(Self.base + "/") || url.hasPrefix(Self.base + "?"))
            let path = url.dropFirst(Self.base.count).prefix { $0 != "?" }
            #expect(!path.split(separator: "/").contains { $0 == ".." || $0 == "." })
        }
    }

    @Test(arguments: ["", "[", "[[", "[proxy]\nlisten = 1", "a = \"\\u0000\"", "[[named_credential]]\nname = 1"])
    func configTextNeverTraps(text: String) {
        do {
            _ = try ConfigLoader.load(text: text)
        } catch {
            #expect(!error.issues.isEmpty)
        }
    }

    /// FuzzConfig: toml++ asserted (aborting debug builds) on a table header whose first key
    /// starts with something other than a bare key character or a quote; first found as
    /// `[\x8eroxy]` (invalid UTF-8, read as U+FFFD), then as `[[[external_credential.principal]]`.
    @Test(arguments: [
        "[\u{FFFD}roxy]\nlisten = \"127.0.0.1:0\"\n", "[é]", "[[é]]", "[ é]", "[[ \tproxy]]\n[é]", "\u{FEFF}[é]",
        "[\u{301}]", "a = 1\r\n[\u{1F600}]\r\n", "[[[external_credential.principal]]\nname = \"x\"", "[=]", "[.a]",
        "[#]", "[", "[[", "[ \n", "[\r\n",
    ])
    func invalidTableHeadersAreReportedNotAsserted(text: String) {
        do {
            _ = try ConfigLoader.load(text: text)
            Issue.record("accepted")
        } catch {
            #expect(error.issues.contains { $0.message.contains("table header") })
        }
    }

    @Test(arguments: [
        "{!", "{!(", "{!\"", "{!BASE64DECODE(\"DQo=\")}", "{!LEFT(\"a\", -1)}", "{!RIGHT(\"a\", 99999999999999999999)}",
    ])
    func formulasNeverTrapOrEmitLineBreaks(source: String) {
        guard let formula = try? Formula(parsing: source) else { return }
        if let value = try? formula.evaluate(in: FormulaContext()) {
            #expect(!value.contains("\r") && !value.contains("\n") && !value.contains("\0"))
        }
    }
}
