/// What a request head says about its body, or why the request must be refused.
public enum BodyFraming: Equatable, Sendable {
    case empty
    case length(Int64)
    case chunked

    /// RFC 9112 §6: Content-Length with Transfer-Encoding, several differing Content-Lengths, a
    /// transfer coding other than chunked, or an invalid length are refused (request smuggling).
    /// - Parameters:
    ///   - contentLength: the values of every `Content-Length` header, split at commas.
    ///   - transferEncoding: the same for `Transfer-Encoding`.
    public static func of(contentLength lengths: [Substring], transferEncoding encodings: [Substring]) -> Result<
        BodyFraming, Problem
    > {
        if !encodings.isEmpty {
            if !lengths.isEmpty {
                return .failure(.badRequest("Content-Length together with Transfer-Encoding is not allowed"))
            }
            guard encodings.count == 1, encodings[0].caseInsensitiveEquals("chunked") else {
                return .failure(.badRequest("only Transfer-Encoding: chunked is supported"))
            }
            return .success(.chunked)
        }
        guard let first = lengths.first else { return .success(.empty) }
        guard lengths.allSatisfy({ $0 == first }), !first.isEmpty, first.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
            let n = Int64(first)
        else {
            return .failure(.badRequest("invalid or conflicting Content-Length"))
        }
        if lengths.count > 1 { return .failure(.badRequest("duplicate Content-Length")) }
        return .success(n == 0 ? .empty : .length(n))
    }
}
