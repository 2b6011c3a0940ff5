import CalloutCore
import FuzzDriver

private let resolver: IdentityResolver = {
    var settings = ProxySettings()
    settings.trustedCallers = [CIDR("127.0.0.1/32")!]
    return IdentityResolver(settings: settings, callers: [])
}()

private let base = "https://api.example/v2"

/// The input is a request head: `METHOD TARGET` on the first line, then `Name: value` lines.
/// Addressing, joining and identity resolution never trap, and a joined URL never leaves the
/// base path or carries a `..` segment.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAddressing(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
        line.hasSuffix("\r") ? line.dropLast() : line
    }[...]
    guard let requestLine = lines.popFirst() else { return 0 }
    let parts = requestLine.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
    let method = String(parts[0])
    let target = parts.count > 1 ? String(parts[1]) : ""
    var headers: [(String, String)] = []
    for line in lines {
        guard let colon = line.firstIndex(of: ":") else { continue }
        let value = line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
        headers.append((String(line[..<colon]), String(value)))
    }
    let host = headers.first { $0.0.lowercased() == "host" }?.1
    if case .success(let address) = CalloutAddressing.address(method: method, target: target, host: host) {
        precondition(!address.alias.isEmpty, "empty alias")
        if case .success(let url) = URLJoin.join(base: base, path: address.path, query: address.query) {
            precondition(
                url == base || url.hasPrefix(base + "/") || url.hasPrefix(base + "?"), "joined URL left the base")
            let path = url.dropFirst(base.count).prefix { $0 != "?" }
            for segment in path.split(separator: "/") {
                precondition(segment != ".." && segment != ".", "dot segment in a joined URL")
            }
        }
    }
    _ = resolver.resolve(peer: [127, 0, 0, 1], headers: headers)
    _ = resolver.resolve(peer: [10, 0, 0, 1], headers: headers)
    return 0
}

/// The entry point SwiftPM links as `main` (see FuzzDriver.h).
@_cdecl("FuzzAddressing_main")
public func fuzzAddressingMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    fuzz_driver_run(argc, argv) { data, size in
        guard let data else { return 0 }
        return fuzzAddressing(data, size)
    }
}
