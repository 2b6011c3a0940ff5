import CalloutCore
import Testing

@Suite struct HopByHopTests {
    @Test func everyListedNameIsFoundWhateverItsCase() {
        for name in HopByHop.names {
            #expect(HopByHop.contains(name))
            #expect(HopByHop.contains(name.uppercased()))
        }
        for name in ["host", "authorization", "content-length", "tee", "upgrades", "x-connection"] {
            #expect(!HopByHop.contains(name))
        }
    }

    @Test func connectionListsFurtherNamesButNotItsOwnTokens() {
        let listed = HopByHop.connectionListed(in: [
            ("Connection", "keep-alive, X-Trace ,\tX-Debug"), ("Host", "a"), ("connection", "close,,Upgrade"),
        ])
        #expect(listed == ["x-trace", "x-debug"])
        #expect(HopByHop.drops("x-TRACE", listed: listed))
        #expect(HopByHop.drops("Keep-Alive", listed: []))
        #expect(!HopByHop.drops("X-Other", listed: listed))
        #expect(HopByHop.connectionListed(in: [("Host", "a")]).isEmpty)
    }

    @Test func requestsAndResponsesUseTheSameList() {
        let out = OutboundHeaders.build(
            incoming: HopByHop.names.map { ($0, "x") } + [
                ("Connection", "X-Secret"), ("X-Secret", "1"), ("Accept", "*/*"),
            ],
            isIdentityHeader: { _ in false }, customHeaders: [], authorization: nil, host: "api", via: "1.1 p")
        #expect(out.map(\.0) == ["Host", "Accept", "Via"])
    }
}
