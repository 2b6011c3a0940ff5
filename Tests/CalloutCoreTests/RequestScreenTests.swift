import Testing

@testable import CalloutCore

/// Head checks before addressing: the Host rules that keep rebound browsers out, TRACE, and
/// OPTIONS with Max-Forwards: 0.
@Suite struct RequestScreenTests {
    static let config: ProxyConfig = {
        var config = try! ConfigLoader.load(
            text: validConfig.replacingOccurrences(
                of: #"listen = "127.0.0.1:8080""#,
                with: #"listen = "127.0.0.1:8080"\#nallowed_hosts = ["callout-proxy.internal"]"#))
        config.proxy.listen = HostPort(host: "127.0.0.1", port: 8080)
        return config
    }()

    func screen(
        _ method: String = "GET", _ target: String = "/callout:Acme/items", host: [String] = ["127.0.0.1:8080"],
        extra: [(String, String)] = [], version: (Int, Int) = (1, 1)
    ) -> Result<String?, Problem> {
        RequestScreen.screen(
            config: Self.config, method: method, target: target, headers: host.map { ("Host", $0) } + extra,
            httpVersion: version)
    }

    @Test(arguments: [
        "127.0.0.1:8080", "127.0.0.1", "127.9.9.9:1", "localhost:8080", "LOCALHOST", "api.localhost:8080",
        "[::1]:8080", "[::ffff:127.0.0.1]:8080", "Acme", "acme:8080", "Acme.", "callout-proxy.internal:8080",
    ])
    func namesOfTheProxyAreAccepted(_ host: String) {
        #expect(
            HostCheck.accepts(host, listen: Self.config.proxy.listen, extraNames: ["callout-proxy.internal"]) {
                Self.config.namedCredential($0) != nil
            })
    }

    @Test(arguments: [
        "attacker.example:8080", "attacker.example", "10.0.0.5:8080", "[2001:db8::1]:8080", "", "Acme@evil",
        "localhost.attacker.example", "acme.attacker.example", "127.0.0.1:80x",
    ])
    func otherHostsAreMisdirected(_ host: String) {
        #expect(screen(host: [host]).failure?.status == 421)
        #expect(screen(host: [host]).failure?.code == "misdirected_request")
    }

    @Test func anyAddressLiteralIsAcceptedWhenListeningOnEveryAddress() {
        let any = HostPort(host: "0.0.0.0", port: 8080)
        #expect(HostCheck.accepts("10.0.0.5:8080", listen: any) { _ in false })
        #expect(!HostCheck.accepts("rebound.example:8080", listen: any) { _ in false })
    }

    @Test func absoluteFormIsAddressedByItsTarget() {
        #expect(screen("GET", "http://Acme/items", host: ["whatever.example"]).success == "whatever.example")
    }

    @Test func hostMustBeThereOnceInHTTP11() {
        #expect(screen(host: []).failure?.status == 400)
        #expect(screen(host: ["127.0.0.1", "attacker.example"]).failure?.status == 400)
        #expect(screen(host: ["127.0.0.1", "127.0.0.1"]).failure?.code == "bad_request")
        #expect(screen(host: [], version: (1, 0)).success == .some(nil))
    }

    @Test(arguments: ["TRACE", "TRACK"])
    func traceIsNeverForwarded(_ method: String) {
        let problem = screen(method).failure
        #expect(problem?.status == 405)
        #expect(problem?.headers.first { $0.0 == "Allow" }?.1 == RequestScreen.forwardedMethods)
        #expect(problem?.json.contains("\"code\":\"method_not_allowed\"") == true)
    }

    @Test func optionsWithNoForwardsLeftIsAnsweredByTheProxy() {
        let answer = screen("OPTIONS", extra: [("Max-Forwards", "0")]).failure
        #expect(answer?.status == 200)
        #expect(answer?.headers.contains { $0.0 == "Allow" } == true)
        #expect(screen("OPTIONS", extra: [("Max-Forwards", "2")]).success != nil)
        #expect(screen("GET", extra: [("Max-Forwards", "0")]).success != nil)
    }

    @Test func optionsForwardedWithOneHopLess() {
        let out = OutboundHeaders.build(
            incoming: [("Max-Forwards", "3")], isIdentityHeader: { _ in false }, customHeaders: [],
            authorization: nil, host: "api", via: "1.1 p", decrementMaxForwards: true)
        #expect(out.first { $0.0 == "Max-Forwards" }?.1 == "2")
    }

    @Test func proxyAuthenticationInfoIsHopByHop() {
        #expect(HopByHop.contains("Proxy-Authentication-Info"))
        #expect(HopByHop.drops("proxy-authentication-info", listed: []))
    }

    @Test func routerRefusesBeforeLookingAtTheAlias() {
        var alias: String? = nil
        let result = CalloutRouter.route(
            config: Self.config, identityResolver: IdentityResolver(settings: Self.config.proxy, callers: []),
            method: "GET",
            target: "/callout:Acme/items", headers: [("Host", "attacker.example:8080")], peer: [127, 0, 0, 1],
            alias: &alias)
        #expect(result.failure?.code == "misdirected_request")
        #expect(alias == nil)
    }

    @Test func allowedHostsMustBePlainNames() {
        let bad = issues(
            validConfig.replacingOccurrences(
                of: #"listen = "127.0.0.1:8080""#,
                with: #"listen = "127.0.0.1:8080"\#nallowed_hosts = ["http://proxy:8080/"]"#))
        #expect(bad.contains { $0.keyPath.hasSuffix("allowed_hosts") })
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let f) = self { return f }
        return nil
    }
    var success: Success? {
        if case .success(let s) = self { return s }
        return nil
    }
}
