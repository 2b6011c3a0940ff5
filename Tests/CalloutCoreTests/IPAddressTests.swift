import Testing

@testable import CalloutCore

@Suite struct IPAddressTests {
    @Test(
        arguments: [
            ("127.0.0.1", [127, 0, 0, 1]), ("0.0.0.0", [0, 0, 0, 0]), ("255.255.255.255", [255, 255, 255, 255]),
            ("10.20.30.40", [10, 20, 30, 40]),
        ] as [(String, [UInt8])])
    func dottedQuads(text: String, bytes: [UInt8]) {
        #expect(IPAddress.parse(text) == bytes)
    }

    @Test(arguments: [
        "", ".", "1.2.3", "1.2.3.4.5", "1.2.3.", ".1.2.3", "1..2.3", "256.0.0.1", "1.2.3.1000", "01.2.3.4",
        "1.2.3.04", "1.2.3.-4", "1.2.3.+4", "1.2.3.4 ", " 1.2.3.4", "1.2.3.٤", "1.2.3.4\u{301}", "１.2.3.4",
        "1.2.3.a", "localhost",
    ])
    func notDottedQuads(text: String) {
        #expect(IPAddress.parseV4(Substring(text)) == nil)
    }

    @Test func networksContainTheirAddresses() throws {
        let loopback = try #require(CIDR("127.0.0.0/8"))
        #expect(loopback.contains([127, 1, 2, 3]))
        #expect(!loopback.contains([128, 0, 0, 1]))
        // IPv4-mapped IPv6 matches an IPv4 network.
        #expect(loopback.contains([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 127, 0, 0, 9]))
        #expect(!loopback.contains([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFE, 127, 0, 0, 9]))
        let odd = try #require(CIDR("192.168.4.0/22"))
        #expect(odd.contains([192, 168, 7, 255]))
        #expect(!odd.contains([192, 168, 8, 0]))
        let v6 = try #require(CIDR("fd00::/8"))
        #expect(v6.contains(IPAddress.parse("fd12::1")!))
        #expect(!v6.contains(IPAddress.parse("fe80::1")!))
        #expect(!v6.contains([127, 0, 0, 1]))
        #expect(try #require(CIDR("0.0.0.0/0")).contains([8, 8, 8, 8]))
        #expect(!loopback.contains([127, 0, 0]))
    }
}

@Suite struct HostNameTests {
    @Test(arguments: [
        "127.0.0.1", "127.0.0.1:8080", " Localhost:80 ", "\tAPI.Example.COM.", "api.example.com.:443", "[::1]",
        "[::1]:9901", "[FE80::1]:x", "[::1]x", "[]", "[", "::1", "a:b:80", "user@host", "host:", "host:8o", ".",
        "", "   ", "a..", "acme", "ACME:1", "[::ffff:127.0.0.1]:1", "h\u{00e9}llo", "host:\u{0661}", "x\u{0301}:80",
    ])
    func bytesAndCharactersAgree(value: String) {
        #expect(HostCheck.hostName(value) == HostCheck.characterHostName(value))
    }

    @Test func asciiValuesAreReadOnTheirBytes() {
        #expect(HostCheck.asciiHostName("Api.Example.com:8443") == .some("api.example.com"))
        #expect(HostCheck.asciiHostName("[::1]:1") == .some("::1"))
        #expect(HostCheck.asciiHostName("a@b") == .some(nil))
        #expect(HostCheck.asciiHostName("h\u{00e9}llo") == .none)
    }
}
