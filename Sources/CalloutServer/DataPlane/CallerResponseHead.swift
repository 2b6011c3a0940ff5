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
        // One new header list, sized once: copying the upstream's list and removing from it
        // would copy it again (its storage is shared with the upstream head).
        var listed: [String] = []
        for header in response.headers where header.name.caseInsensitiveEquals("connection") {
            HopByHop.appendConnectionListed(header.value, to: &listed)
        }
        var headers = HTTPHeaders()
        headers.reserveCapacity(response.headers.count + 3)
        for header in response.headers where !HopByHop.drops(header.name, listed: listed) {
            // The upstream's request id is replaced by this callout's.
            if requestId != nil, header.name.caseInsensitiveEquals(RequestID.header) { continue }
            headers.add(name: header.name, value: header.value)
        }
        headers.add(name: "Via", value: CalloutPlan.via)
        let callerIsHTTP10 = request.version.major == 1 && request.version.minor == 0
        let bodiless = MessageRules.isBodiless(
            requestIsHEAD: request.method == .HEAD, status: Int(response.status.code))
        let endsConnection = MessageRules.responseEndsConnection(
            callerIsHTTP10: callerIsHTTP10, bodiless: bodiless,
            hasContentLength: headers.contains(name: "content-length"))
        // `Connection` was dropped above (hop-by-hop): this hop's own is added.
        if !clientKeepAlive || endsConnection {
            headers.add(name: "Connection", value: "close")
        } else if callerIsHTTP10 {
            // An HTTP/1.0 caller keeps the connection only when told so.
            headers.add(name: "Connection", value: "keep-alive")
        }
        if let requestId { headers.add(name: RequestID.header, value: requestId) }
        // `Transfer-Encoding` is hop-by-hop, so a bodiless response never carries the upstream's.
        return (HTTPResponseHead(version: request.version, status: response.status, headers: headers), endsConnection)
    }
}
