extension EchoUpstream {
    /// Given the bearer token of a request, whether it is valid (`nil`: unknown). Called on an
    /// event loop: must be quick and must not block.
    public typealias TokenCheck = @Sendable (_ bearerToken: String) -> Bool?

    /// How the server answers, settable while it runs.
    public enum Behavior: Sendable, Equatable {
        /// 200 with a JSON description of the request (or `?respond_bytes=N` bytes); 401 with
        /// `WWW-Authenticate: Bearer error="invalid_token"` when the token check says false.
        case echo
        /// Always this status, with the JSON echo body.
        case status(Int)
        /// One status per request, in order, then `.echo`.
        case statusSequence([Int])
        /// Always 401 with `WWW-Authenticate: Bearer error="invalid_token"`.
        case unauthorizedForever
        /// `status` (default 302) with `Location: to`.
        case redirect(to: String, status: Int = 302)
        /// Waits this long before sending the response head (scheduled on the event loop).
        case slowHeaders(seconds: Double)
        /// Sends the head at once, then the body in `chunks` pieces, each after `delay` seconds.
        case slowBody(chunks: Int, delay: Double)
        /// Sends the response head (announcing a body), then resets the connection.
        case resetAfterHead
        /// Closes the connection as soon as a request head arrives, without answering.
        case closeImmediately
        /// Echoes, then misbehaves after the response as `misbehavior` says.
        case misbehave(Misbehavior)
        /// Echoes, misbehaving after each response as the list says, in turn (request 1 the
        /// first entry, and round again).
        case misbehaving([Misbehavior])
    }

    /// What a misbehaving upstream does after a correctly framed echo response.
    public enum Misbehavior: Sendable, Equatable {
        /// Nothing: a clean response.
        case none
        /// Sends one more complete response (the same echo, a second time), unasked, with the first.
        case extraResponse
        /// Sends bytes that are no response at all after the body.
        case junkAfterBody
        /// Closes the connection after the response, though it announced keep-alive.
        case closeAfterResponse
        /// Sends one more complete response this many seconds later, unasked.
        case extraResponseLater(seconds: Double)
    }

    public struct Configuration: Sendable {
        /// Address to bind (default 127.0.0.1) and port (default 0: any free port).
        public var host: String
        public var port: Int
        /// Serve HTTPS with this certificate and key; plain HTTP when nil.
        public var tls: DevelopmentTLSMaterial?
        /// Oldest recorded requests are dropped past this (default 1,000).
        public var maxRecordedRequests: Int
        /// Size of each response body write (default 64 KiB).
        public var responseChunkBytes: Int

        public init(
            host: String = "127.0.0.1",
            port: Int = 0,
            tls: DevelopmentTLSMaterial? = nil,
            maxRecordedRequests: Int = 1_000,
            responseChunkBytes: Int = 64 * 1024
        ) {
            self.host = host
            self.port = port
            self.tls = tls
            self.maxRecordedRequests = maxRecordedRequests
            self.responseChunkBytes = max(1, responseChunkBytes)
        }
    }

    /// One request as received. Holds the request headers, `Authorization` included (test
    /// data); the description leaves header values out.
    public struct RecordedRequest: Sendable, CustomStringConvertible {
        /// Unix seconds when the request head arrived.
        public var receivedAt: Double
        public var method: String
        /// The request target before any `?`.
        public var path: String
        /// The text after the first `?`, if any.
        public var query: String?
        /// In the order received.
        public var headers: [(name: String, value: String)]
        /// Request body bytes received.
        public var bodyBytes: Int
        /// Lower-case hex SHA-256 of the request body.
        public var bodySHA256: String
        /// Status answered; 0 when the connection was closed instead.
        public var status: Int

        /// The first value of header `name` (case-insensitive).
        public func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }

        public var authorization: String? { header("Authorization") }

        public var description: String {
            let target = query == nil ? path : "\(path)?…"
            return
                "RecordedRequest(\(method) \(target), headers: \(headers.map(\.name)), body: \(bodyBytes) bytes, status: \(status))"
        }
    }
}
