import Testing

@testable import CalloutCore

@Suite struct AccessLogConfigTests {
    func withAccessLog(_ value: String) -> String {
        variant("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:8080\"\naccess_log = \(value)")
    }

    @Test func standardErrorIsTheDefault() throws {
        #expect(ProxySettings().accessLog == .standardError)
        #expect(try ConfigLoader.load(text: validConfig).proxy.accessLog == .standardError)
        #expect(try ConfigLoader.load(text: withAccessLog(#""stderr""#)).proxy.accessLog == .standardError)
    }

    @Test func offAndPathsAreRead() throws {
        #expect(try ConfigLoader.load(text: withAccessLog(#""off""#)).proxy.accessLog == .off)
        #expect(
            try ConfigLoader.load(text: withAccessLog(#""/var/log/callout/access.log""#)).proxy.accessLog
                == .file("/var/log/callout/access.log"))
    }

    @Test func aRelativePathIsResolvedBesideTheConfiguration() throws {
        let config = try ConfigLoader.load(
            text: withAccessLog(#""logs/access.log""#), file: "/etc/callout/proxy.conf", baseDirectory: "/etc/callout")
        #expect(config.proxy.accessLog == .file("/etc/callout/logs/access.log"))
    }

    @Test func anEmptyValueIsAProblemAtItsLine() {
        let found = issues(withAccessLog(#""""#))
        #expect(found.count == 1)
        #expect(found.first?.keyPath == "proxy.access_log")
        #expect(found.first?.message == #"must be "stderr", "off" or the path of a file"#)
        #expect(found.first?.line == 3)
        #expect(issues(withAccessLog("5")).first?.keyPath == "proxy.access_log")
    }
}
