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
        if headers.contains(where: { HopByHop.contains($0.name) }) {
            let listed = HopByHop.connectionListed(in: headers.lazy.map { ($0.name, $0.value) })
            headers = HTTPHeaders(headers.filter { !HopByHop.drops($0.name, listed: listed) })
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
