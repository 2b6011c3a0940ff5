import Crypto
import Foundation
import Testing

@testable import CalloutCore

@Suite struct AddressingTests {
    func addr(_ target: String, host: String? = nil, method: String = "GET") -> Result<CalloutAddress, AddressingError>
    {
        CalloutAddressing.address(method: method, target: target, host: host)
    }

    @Test func absoluteFormWinsOverHost() {
        #expect(
            addr("http://Acme/items?x=1", host: "Other")
                == .success(CalloutAddress(alias: "Acme", path: "/items", query: "x=1")))
        #expect(addr("http://acme:80") == .success(CalloutAddress(alias: "acme", path: "", query: nil)))
        #expect(addr("http://Acme?x") == .success(CalloutAddress(alias: "Acme", path: "", query: "x")))
    }

    @Test func pathForm() {
        #expect(
            addr("/callout:Acme/items?x=1") == .success(CalloutAddress(alias: "Acme", path: "/items", query: "x=1")))
        #expect(addr("/callout%3AAcme/a/b") == .success(CalloutAddress(alias: "Acme", path: "/a/b", query: nil)))
        #expect(addr("/callout%3aAcme") == .success(CalloutAddress(alias: "Acme", path: "", query: nil)))
        #expect(addr("/callout:/items") == .failure(.noAlias))
    }

    @Test func hostForm() {
        #expect(addr("/items", host: "Acme") == .success(CalloutAddress(alias: "Acme", path: "/items", query: nil)))
        #expect(
            addr("/items", host: "Acme:8080") == .success(CalloutAddress(alias: "Acme", path: "/items", query: nil)))
        #expect(addr("/items", host: nil) == .failure(.noAlias))
    }

    @Test func refusals() {
        #expect(addr("api.example:443", method: "CONNECT") == .failure(.connectNotSupported))
        #expect(addr("https://Acme/") == .failure(.unsupportedScheme("https")))
        #expect(addr("http://127.0.0.1:9901/admin") == .failure(.noAlias))
        #expect(addr("http://[::1]/x") == .failure(.noAlias))
        #expect(addr("http://user@Acme/x") == .failure(.noAlias))
        #expect(addr("/x", host: "10.0.0.1") == .failure(.noAlias))
        if case .failure(.malformedTarget) = addr("/a b") {} else { Issue.record("space accepted") }
        if case .failure(.malformedTarget) = addr("*") {} else { Issue.record("asterisk accepted") }
    }
}

@Suite struct URLJoinTests {
    @Test(arguments: [
        ("https://api.example/v2", "/items", nil as String?, "https://api.example/v2/items"),
        ("https://api.example/v2/", "/items", nil, "https://api.example/v2/items"),
        ("https://api.example/v2", "", "a=1", "https://api.example/v2?a=1"),
        ("https://api.example/v2", "/", nil, "https://api.example/v2/"),
        ("https://api.example", "/a/b/", "q", "https://api.example/a/b/?q"),
        ("https://api.example/v2", "//items", nil, "https://api.example/v2/items"),
        ("https://api.example/v2", "/a/../b", nil, "https://api.example/v2/b"),
        ("https://api.example/v2", "/a/./b", nil, "https://api.example/v2/a/b"),
        ("https://api.example/v2", "/caf%C3%A9", nil, "https://api.example/v2/caf%C3%A9"),
        ("https://api.example/v2", "/a/..;/b", nil, "https://api.example/v2/b"),
        ("https://api.example/v2", "/a;v=1/b", nil, "https://api.example/v2/a;v=1/b"),
    ])
    func joins(_ base: String, _ path: String, _ query: String?, _ expected: String) {
        #expect(URLJoin.join(base: base, path: path, query: query) == .success(expected))
    }

    @Test(arguments: [
        "/..", "/../x", "/a/../../x", "/%2e%2e/x", "/%2E%2E/x", "/%252e%252e/x", "/.%2e/x", "/a/%2e%2e/%2e%2e/x",
        "/..;/x", "/%2e%2e;/x", "/..;jsessionid=1/x", "/a/..;/..;/x", "/.;/..%3b/x",
    ])
    func traversalIsRefused(_ path: String) {
        #expect(URLJoin.join(base: "https://api.example/v2", path: path, query: nil) == .failure(.escapesBasePath))
    }

    @Test(arguments: ["/a%2fb", "/a%5cb", "/a%00b", "/a%252fb"])
    func encodedSeparatorsAreRefused(_ path: String) {
        #expect(URLJoin.join(base: "https://api.example/v2", path: path, query: nil) == .failure(.ambiguousPath))
    }

    @Test(arguments: [
        "", "/", "/items", "/a/b/", "/a.b/c", "/v1.2/x;y=1", "/a-b_c~d", "//x", "/./x", "/x/.", "/x/..", "/.hidden",
        "/a%2Fb", "/a\\b", "/a\u{0}b", "/caf\u{E9}", "/\u{301}x", "items", "/a//", "/a/;", "/.;",
    ])
    func plainPathsAreThoseTheGeneralJoinKeeps(_ path: String) {
        // Where the shortcut applies it must agree with the general join; elsewhere it must not apply
        // to anything the general join changes.
        for base in ["https://api.example/v2", "https://api.example/v2/", "https://api.example"] {
            #expect(
                URLJoin.join(base: base, path: path, query: "q")
                    == URLJoin.resolvingJoin(base: base, path: path, query: "q"))
        }
    }

    @Test func shortcutAgreesWithTheGeneralJoinOnGeneratedPaths() {
        // A fixed seed: the same 20,000 paths each run, built from the bytes every rule looks at.
        var random = SeededGenerator(seed: 0x5EED)
        let pieces = [
            "/", "a", "b", ".", "..", ";", "%", "2e", "2f", "%2e", "\\", "\u{0}", "\u{E9}", "~", "-", "=", "?",
        ]
        for _ in 0..<20_000 {
            var path = random.next() % 4 == 0 ? "" : "/"
            for _ in 0..<Int(random.next() % 8) { path += pieces[Int(random.next() % UInt64(pieces.count))] }
            let base = random.next() % 2 == 0 ? "https://api.example/v2" : "https://api.example/v2/"
            #expect(
                URLJoin.join(base: base, path: path, query: nil)
                    == URLJoin.resolvingJoin(base: base, path: path, query: nil),
                "path \(path.debugDescription)")
        }
    }
}

func sha256Hex(_ s: String) -> [UInt8] { Array(SHA256.hash(data: Array(s.utf8))) }

@Suite struct IdentityTests {
    let settings: ProxySettings = {
        var s = ProxySettings()
        s.trustedCallers = [CIDR("127.0.0.0/8")!]
        return s
    }()
    let callers = [
        CallerConfig(
            name: "billing", tokenSHA256: sha256Hex("billing-token"), permissionSets: ["Billing"],
            profile: "Integration", user: ["Department": "Finance"]),
        CallerConfig(name: "gateway", tokenSHA256: sha256Hex("gw:pw"), trustIdentityHeaders: true),
    ]
    var resolver: IdentityResolver { IdentityResolver(settings: settings, callers: callers) }
    let loopback: [UInt8] = [127, 0, 0, 1]
    let remote: [UInt8] = [192, 0, 2, 7]

    @Test func trustedAddressHeadersAreBelieved() throws {
        let id = try resolver.resolve(
            peer: loopback,
            headers: [
                ("X-Callout-Permission-Sets", "A, B"), ("x-callout-permission-sets", "C,A"),
                ("X-Callout-Profile", "Ops"), ("X-Callout-User-Department", "Sales"), ("X-Callout-Principal", "Admin"),
            ]
        ).get()
        #expect(id.permissionSets == ["A", "B", "C"])
        #expect(id.profile == "Ops")
        #expect(id.user == ["department": "Sales"])
        #expect(id.requestedPrincipal == "Admin")
    }

    @Test func untrustedWithoutCredentialsGets407() {
        #expect(
            resolver.resolve(peer: remote, headers: [("X-Callout-Permission-Sets", "A")])
                == .failure(.proxyAuthenticationRequired))
        #expect(
            resolver.resolve(peer: remote, headers: [("Proxy-Authorization", "Bearer wrong")])
                == .failure(.proxyAuthenticationRequired))
        #expect(
            resolver.resolve(peer: remote, headers: [("Proxy-Authorization", "Digest x")])
                == .failure(.proxyAuthenticationRequired))
    }

    @Test func authenticatedCallerBringsItsIdentityAndHeadersAreIgnored() throws {
        let id = try resolver.resolve(
            peer: remote,
            headers: [
                ("Proxy-Authorization", "Bearer billing-token"), ("X-Callout-Permission-Sets", "Admins"),
                ("X-Callout-User-Department", "Evil"),
            ]
        ).get()
        #expect(id.callerName == "billing")
        #expect(id.permissionSets == ["Billing"])
        #expect(id.user == ["department": "Finance"])
    }

    @Test func basicAuthAndTrustedHeaders() throws {
        let basic = "Basic " + Data("gw:pw".utf8).base64EncodedString()
        let id = try resolver.resolve(
            peer: remote, headers: [("Proxy-Authorization", basic), ("X-Callout-Permission-Sets", "Admins")]
        ).get()
        #expect(id.callerName == "gateway")
        #expect(id.permissionSets == ["Admins"])
    }

    @Test func hostileHeaders() {
        let many = (0...300).map { "S\($0)" }.joined(separator: ",")
        if case .failure(.badIdentityHeader) = resolver.resolve(
            peer: loopback, headers: [("X-Callout-Permission-Sets", many)])
        {
        } else {
            Issue.record("huge list accepted")
        }
        if case .failure(.badIdentityHeader) = resolver.resolve(
            peer: loopback, headers: [("X-Callout-User-Dept", "a\r\nInjected: x")])
        {
        } else {
            Issue.record("CRLF accepted")
        }
    }

    @Test func identityHeadersAreRecognised() {
        #expect(resolver.isIdentityHeader("x-callout-user-anything"))
        #expect(resolver.isIdentityHeader("X-CALLOUT-PERMISSION-SETS"))
        #expect(!resolver.isIdentityHeader("X-Other"))
        #expect(resolver.isIdentityHeader("X-Callout-User-"))
        #expect(!resolver.isIdentityHeader("X-Callout-User"))
        #expect(!resolver.isIdentityHeader("X-Callout-Usfr-Dept"))
    }

    @Test func userFieldsAreReadAfterThePrefixOnBytes() {
        #expect(IdentityResolver.field("X-CALLOUT-USER-Dept", afterPrefix: "X-Callout-User-") == "dept")
        #expect(IdentityResolver.field("x-callout-user-Cost-Centre", afterPrefix: "X-Callout-User-") == "cost-centre")
        #expect(IdentityResolver.field("X-Callout-User-", afterPrefix: "X-Callout-User-") == nil)
        #expect(IdentityResolver.field("X-Callout-Permission-Sets", afterPrefix: "X-Callout-User-") == nil)
        // `@` and a backquote differ only in the bit that cases letters: not letters, not equal.
        #expect(!IdentityResolver.hasPrefix("X@", "X`"))
        #expect(IdentityResolver.hasPrefix("x-A", "X-a"))
        if case .success(let identity) = resolver.resolve(
            peer: loopback, headers: [("x-callout-user-DEPT", "Sales"), ("X-Callout-Permission-Sets", "Reader")])
        {
            #expect(identity.user["dept"] == "Sales")
        } else {
            Issue.record("identity not resolved")
        }
    }
}

@Suite struct PrincipalTests {
    let credential = ExternalCredentialConfig(
        name: "Acme_API", identityProviderURL: URL(string: "https://idp.example/token")!, signingCertificate: "S",
        principals: [
            PrincipalConfig(name: "Reader", sequenceNumber: 20, clientId: "r", permissionSets: ["Readers", "Admins"]),
            PrincipalConfig(name: "Admin", sequenceNumber: 5, clientId: "a", permissionSets: ["Admins"]),
            PrincipalConfig(name: "Ops", sequenceNumber: 10, clientId: "o", profiles: ["Ops"]),
        ])

    @Test func lowestSequenceWinsWhateverTheFileOrder() throws {
        #expect(
            try PrincipalResolver.choose(credential, for: CallerIdentity(permissionSets: ["Admins"])).get().name
                == "Admin")
        #expect(
            try PrincipalResolver.choose(credential, for: CallerIdentity(permissionSets: ["Readers"], profile: "Ops"))
                .get().name == "Ops")
        #expect(
            try PrincipalResolver.choose(credential, for: CallerIdentity(permissionSets: ["Readers"])).get().name
                == "Reader")
    }

    @Test func nobodyQualifies() {
        #expect(
            PrincipalResolver.choose(credential, for: CallerIdentity(permissionSets: ["Other"]))
                == .failure(.noPrincipal))
        #expect(PrincipalResolver.choose(credential, for: CallerIdentity()) == .failure(.noPrincipal))
    }

    @Test func requestedPrincipalMustQualify() throws {
        #expect(
            try PrincipalResolver.choose(
                credential, for: CallerIdentity(permissionSets: ["Admins"], requestedPrincipal: "reader")
            ).get().name == "Reader")
        #expect(
            PrincipalResolver.choose(
                credential, for: CallerIdentity(permissionSets: ["Readers"], requestedPrincipal: "Admin"))
                == .failure(.requestedPrincipalNotAllowed("Admin")))
    }
}

@Suite struct RetryDecisionTests {
    let credential = ExternalCredentialConfig(
        name: "A", identityProviderURL: URL(string: "https://i/t")!, signingCertificate: "S",
        additionalRefreshStatusCodes: [403])

    @Test func decisions() {
        #expect(
            RetryDecision.decide(
                status: 401, attempt: 1, injectedToken: true, bodyReplayable: true, credential: credential)
                == .refreshAndReplay)
        #expect(
            RetryDecision.decide(
                status: 403, attempt: 1, injectedToken: true, bodyReplayable: true, credential: credential)
                == .refreshAndReplay)
        #expect(
            RetryDecision.decide(
                status: 404, attempt: 1, injectedToken: true, bodyReplayable: true, credential: credential) == .deliver)
        #expect(
            RetryDecision.decide(
                status: 401, attempt: 2, injectedToken: true, bodyReplayable: true, credential: credential) == .deliver)
        #expect(
            RetryDecision.decide(
                status: 401, attempt: 1, injectedToken: false, bodyReplayable: true, credential: credential) == .deliver
        )
        #expect(
            RetryDecision.decide(
                status: 401, attempt: 1, injectedToken: true, bodyReplayable: false, credential: credential)
                == .deliverNotReplayable)
        #expect(
            RetryDecision.decide(
                status: 500, attempt: 1, injectedToken: true, bodyReplayable: true, credential: credential) == .deliver)
    }
}

@Suite struct OutboundHeaderTests {
    @Test func stripsHopByHopIdentityAndOverrides() {
        let out = OutboundHeaders.build(
            incoming: [
                ("Host", "Acme"), ("Connection", "keep-alive, X-Secret-Hop"), ("X-Secret-Hop", "1"),
                ("Keep-Alive", "5"),
                ("TE", "trailers"), ("Transfer-Encoding", "chunked"), ("Upgrade", "h2c"),
                ("Proxy-Authorization", "Bearer p"),
                ("Proxy-Connection", "keep-alive"), ("X-Callout-Permission-Sets", "A"),
                ("Authorization", "Bearer caller"),
                ("X-Tenant", "caller"), ("Accept", "application/json"), ("Via", "1.0 other"), ("Content-Length", "3"),
            ],
            isIdentityHeader: { $0.lowercased().hasPrefix("x-callout-") },
            customHeaders: [("X-Tenant", "acme")], authorization: "Bearer T", host: "api.example",
            via: "1.1 callout-proxy")
        #expect(out.map(\.0) == ["Host", "Accept", "Authorization", "X-Tenant", "Via"])
        #expect(out.first { $0.0 == "Host" }?.1 == "api.example")
        #expect(out.first { $0.0 == "Authorization" }?.1 == "Bearer T")
        #expect(out.first { $0.0 == "X-Tenant" }?.1 == "acme")
        #expect(out.first { $0.0 == "Via" }?.1 == "1.0 other, 1.1 callout-proxy")
    }

    @Test func callerAuthorizationPassesWhenNotGenerating() {
        let out = OutboundHeaders.build(
            incoming: [("Authorization", "Basic x")], isIdentityHeader: { _ in false }, customHeaders: [],
            authorization: nil, host: "h", via: "v")
        #expect(out.contains { $0 == ("Authorization", "Basic x") })
    }

    @Test func customHeaderOrder() throws {
        let f = { (s: String) in try Formula(parsing: s) }
        let named = [
            CustomHeaderConfig(name: "B", value: try f("n2"), sequenceNumber: 2),
            CustomHeaderConfig(name: "X", value: try f("n1"), sequenceNumber: 1),
        ]
        let external = [
            CustomHeaderConfig(name: "x", value: try f("e1"), sequenceNumber: 1),
            CustomHeaderConfig(name: "C", value: try f("e2"), sequenceNumber: 2),
        ]
        let merged = OutboundHeaders.customHeaderOrder(named: named, external: external)
        #expect(merged.map(\.header.name) == ["X", "B", "C"])
        #expect(merged.map(\.fromNamedCredential) == [true, true, false])
    }
}

@Suite struct ProblemTests {
    @Test func problemJSONIsWellFormed() throws {
        let p = Problem.unknownNamedCredential("Nope\"\n")
        let object = try JSONSerialization.jsonObject(with: Data(p.json.utf8)) as? [String: Any]
        #expect(object?["code"] as? String == "unknown_named_credential")
        #expect(object?["status"] as? Int == 404)
        #expect((object?["detail"] as? String)?.contains("Nope\"?") == true)
    }
}
