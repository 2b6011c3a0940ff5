import CalloutCore
import NIOCore
import NIOHTTP1

/// How a request's body travels: none, fully buffered (replayable after a token refresh), or
/// streamed after a buffered prefix (not replayable).
enum RequestBody {
    case none
    case buffered(ByteBuffer)
    case streaming(prefix: ByteBuffer, declaredLength: Int64?)

    var isReplayable: Bool {
        if case .streaming = self { return false }
        return true
    }
}

/// What the head says about the body, or why the request must be refused.
enum BodyFraming: Equatable {
    case empty
    case length(Int64)
    case chunked

    /// RFC 9112 §6: Content-Length with Transfer-Encoding, several differing Content-Lengths, a
    /// transfer coding other than chunked, or an invalid length are refused (request smuggling).
    static func of(_ head: HTTPRequestHead) -> Result<BodyFraming, Problem> {
        let lengths = head.headers[canonicalForm: "content-length"]
        let encodings = head.headers[canonicalForm: "transfer-encoding"]
        if !encodings.isEmpty {
            if !lengths.isEmpty {
                return .failure(.badRequest("Content-Length together with Transfer-Encoding is not allowed"))
            }
            guard encodings.count == 1, encodings[0].lowercased() == "chunked" else {
                return .failure(.badRequest("only Transfer-Encoding: chunked is supported"))
            }
            return .success(.chunked)
        }
        guard let first = lengths.first else { return .success(.empty) }
        guard lengths.allSatisfy({ $0 == first }), first.allSatisfy(\.isNumber), let n = Int64(first) else {
            return .failure(.badRequest("invalid or conflicting Content-Length"))
        }
        if lengths.count > 1 { return .failure(.badRequest("duplicate Content-Length")) }
        return .success(n == 0 ? .empty : .length(n))
    }
}
