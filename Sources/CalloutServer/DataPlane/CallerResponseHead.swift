import CalloutCore
import NIOHTTP1

/// The response head the caller gets for the upstream's: hop-by-hop headers gone (``HopByHop``),
/// this hop's `Via` and `Connection`, the request id.
enum CallerResponseHead {
    /// - Parameters:
    ///   - clientKeepAlive: the caller's connection may stay open after this response.
    /// - Returns: the head, and whether the response can only end with the caller's connection
    ///   (an HTTP/1.0 caller and a body without a length).
    static func make(
        upstream response: HTTPResponseHead, request: HTTPRequestHead, clientKeepAlive: Bool, requestId: String?
    ) -> (head: HTTPResponseHead, endsClientConnection: Bool) {
        var headers = response.headers
        // Usually the only hop-by-hop header is `Connection: keep-alive`, found in one pass.
        // They are removed in place, by name: no second header list is built.
        if headers.contains(where: { HopByHop.contains($0.name) }) {
            var listed: [String] = []
            for header in headers where header.name.caseInsensitiveEquals("connection") {
                HopByHop.appendConnectionListed(header.value, to: &listed)
            }
            var dropped: [String] = []
            for header in headers where HopByHop.drops(header.name, listed: listed) {
                if !dropped.contains(where: { $0.caseInsensitiveEquals(header.name) }) { dropped.append(header.name) }
            }
            for name in dropped { headers.remove(name: name) }
        }
        headers.add(name: "Via", value: CalloutPlan.via)
        let callerIsHTTP10 = request.version.major == 1 && request.version.minor == 0
        let bodiless = MessageRules.isBodiless(
            requestIsHEAD: request.method == .HEAD, status: Int(response.status.code))
        let endsConnection = MessageRules.responseEndsConnection(
            callerIsHTTP10: callerIsHTTP10, bodiless: bodiless,
            hasContentLength: headers.contains(name: "content-length"))
        if !clientKeepAlive || endsConnection {
            headers.replaceOrAdd(name: "Connection", value: "close")
        } else if callerIsHTTP10 {
            // An HTTP/1.0 caller keeps the connection only when told so.
            headers.replaceOrAdd(name: "Connection", value: "keep-alive")
        }
        if let requestId { headers.replaceOrAdd(name: RequestID.header, value: requestId) }
        var head = HTTPResponseHead(version: request.version, status: response.status, headers: headers)
        if bodiless { head.headers.remove(name: "transfer-encoding") }
        return (head, endsConnection)
    }
}
