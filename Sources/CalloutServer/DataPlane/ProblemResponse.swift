import CalloutCore
import NIOCore
import NIOHTTP1

enum ProblemResponse {
    /// A problem+json response. `close` adds `Connection: close`; the connection then ends.
    static func parts(_ problem: Problem, head: HTTPRequestHead?, close: Bool, requestId: String? = nil)
        -> (HTTPResponseHead, ByteBuffer?)
    {
        let json = problem.json
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: Problem.contentType)
        headers.add(name: "Content-Length", value: String(json.utf8.count))
        headers.add(name: "Cache-Control", value: "no-store")
        if let retryAfter = problem.retryAfter { headers.add(name: "Retry-After", value: String(retryAfter)) }
        for (name, value) in problem.headers { headers.add(name: name, value: value) }
        if let requestId { headers.add(name: RequestID.header, value: requestId) }
        if close {
            headers.add(name: "Connection", value: "close")
        } else if let head, head.version.major == 1, head.version.minor == 0 {
            // An HTTP/1.0 caller keeps the connection only when told so.
            headers.add(name: "Connection", value: "keep-alive")
        }
        let status = HTTPResponseStatus(statusCode: problem.status)
        let body = head?.method == .HEAD ? nil : ByteBuffer(string: json)
        return (HTTPResponseHead(version: head?.version ?? .http1_1, status: status, headers: headers), body)
    }
}
