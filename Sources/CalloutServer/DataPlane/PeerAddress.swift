import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension SocketAddress {
    /// The address's bytes as ``CalloutCore/IPAddress`` gives them (4 for IPv4, 16 for IPv6),
    /// copied straight from the socket address: the trusted-caller CIDR check needs no text.
    var addressBytes: [UInt8]? {
        switch self {
        case .v4(let v4):
            return withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
        case .v6(let v6):
            return withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        case .unixDomainSocket:
            return nil
        }
    }
}
