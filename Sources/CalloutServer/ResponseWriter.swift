import CalloutCore
import NIOCore
import NIOHTTP1

enum ResponseWriter {
    /// Writes a problem+json response. `close` adds `Connection: close`; the caller then ends the connection.
    static func writeProblem(_ problem: Problem, to outbound: Outbound, head: HTTPRequestHead?, close: Bool)
        async throws
    {
        let body = ByteBuffer(string: head?.method == .HEAD ? "" : problem.json)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: Problem.contentType)
        headers.add(name: "Content-Length", value: String(problem.json.utf8.count))
        headers.add(name: "Cache-Control", value: "no-store")
        if let retryAfter = problem.retryAfter { headers.add(name: "Retry-After", value: String(retryAfter)) }
        for (name, value) in problem.headers { headers.add(name: name, value: value) }
        if close { headers.add(name: "Connection", value: "close") }
        let status = HTTPResponseStatus(statusCode: problem.status)
        try await outbound.write(
            .head(HTTPResponseHead(version: head?.version ?? .http1_1, status: status, headers: headers)))
        if body.readableBytes > 0 { try await outbound.write(.body(.byteBuffer(body))) }
        try await outbound.write(.end(nil))
    }
}
