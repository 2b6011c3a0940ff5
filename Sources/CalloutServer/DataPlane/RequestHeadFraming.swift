import CalloutCore
import NIOHTTP1

extension BodyFraming {
    /// What `head` says about its body (``BodyFraming/of(contentLength:transferEncoding:)``).
    static func of(_ head: HTTPRequestHead) -> Result<BodyFraming, Problem> {
        of(
            contentLength: head.headers[canonicalForm: "content-length"],
            transferEncoding: head.headers[canonicalForm: "transfer-encoding"])
    }
}
