import CalloutCore
import NIOCore
import Testing

@testable import CalloutServer

@Suite struct PeerAddressTests {
    @Test func bytesFromTheSocketAddressMatchTheParsedText() throws {
        for text in [
            "127.0.0.1", "10.1.2.3", "255.255.255.255", "::1", "fe80::1:2", "2001:db8::ff00:42:8329", "::ffff:7f00:1",
        ] {
            let address = try SocketAddress(ipAddress: text, port: 443)
            #expect(address.addressBytes == IPAddress.parse(text), "\(text)")
        }
        #expect(try SocketAddress(unixDomainSocketPath: "/tmp/x").addressBytes == nil)
    }
}
