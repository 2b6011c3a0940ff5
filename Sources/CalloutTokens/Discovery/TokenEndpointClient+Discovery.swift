import AsyncHTTPClient
import Logging
import NIOCore
import NIOSSL

extension TokenEndpointClient {
    /// Reads the token endpoint from `issuer`'s metadata: RFC 8414's well-known URL, then
    /// OpenID Connect's. Each answer is bounded by the client's `timeout` and `maxResponseBytes`,
    /// redirects are not followed, and the metadata must name `issuer` exactly.
    public func discoverTokenEndpoint(issuer: String, tlsConfiguration: TLSConfiguration?) async throws
        -> String
    {
        let urls = IssuerMetadata.metadataURLs(issuer: issuer)
        guard !urls.isEmpty else { throw TokenEndpointDiscoveryError(issuer: issuer, reasons: ["not a URL"]) }
        var reasons: [String] = []
        for url in urls {
            do {
                let endpoint = try await metadata(url, issuer: issuer, tlsConfiguration: tlsConfiguration)
                logger.info(
                    "token endpoint discovered",
                    metadata: [
                        "issuer": .string(issuer), "metadata": .string(url), "token_endpoint": .string(endpoint),
                    ])
                return endpoint
            } catch let problem as IssuerMetadata.Problem {
                reasons.append("\(url): \(problem)")
            }
        }
        throw TokenEndpointDiscoveryError(issuer: issuer, reasons: reasons)
    }

    private func metadata(_ url: String, issuer: String, tlsConfiguration: TLSConfiguration?) async throws -> String {
        do throws(TokenExchangeError) {
            try Self.validateURL(url, what: "issuer")
        } catch {
            throw IssuerMetadata.Problem(error.reason)
        }
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        request.headers.add(name: "Accept", value: "application/json")
        if let tlsConfiguration { request.tlsConfiguration = tlsConfiguration }
        let status: Int
        var body: [UInt8] = []
        let httpClient = self.httpClient
        let sent = request
        let timeout = limits.timeout
        let maxBytes = limits.maxResponseBytes
        do {
            // The timeout covers the whole answer, body included, not only its head.
            (status, body) = try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
                group.addTask {
                    let response = try await httpClient.execute(sent, deadline: .distantFuture, logger: nil)
                    let status = Int(response.status.code)
                    if let length = response.headers.first(name: "Content-Length").flatMap(Int.init), length > maxBytes
                    {
                        throw IssuerMetadata.Problem("answer larger than \(maxBytes) bytes")
                    }
                    guard status == 200 else { return (status, []) }
                    var buffer = try await response.body.collect(upTo: maxBytes)
                    return (status, buffer.readBytes(length: buffer.readableBytes) ?? [])
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    throw HTTPClientError.deadlineExceeded
                }
                defer { group.cancelAll() }
                guard let first = try await group.next() else { throw HTTPClientError.deadlineExceeded }
                return first
            }
        } catch let problem as IssuerMetadata.Problem {
            throw problem
        } catch {
            throw IssuerMetadata.Problem(try Self.transportError(error, secrets: []).reason)
        }
        guard status == 200 else { throw IssuerMetadata.Problem("HTTP \(status)") }
        return try IssuerMetadata.tokenEndpoint(from: body, issuer: issuer)
    }
}

/// The token endpoint of an issuer could not be discovered. Its text names the metadata URLs
/// tried and why each failed; it never holds a secret (none is sent).
public struct TokenEndpointDiscoveryError: TokenAcquisitionError, Equatable, CustomStringConvertible {
    public var issuer: String
    public var reasons: [String]
    /// Seconds until the next attempt, when one is scheduled.
    public var retryAfterSeconds: Double?

    public init(issuer: String, reasons: [String], retryAfterSeconds: Double? = nil) {
        self.issuer = issuer
        self.reasons = reasons
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var code: String { "token_endpoint_discovery_failed" }
    public var httpStatus: Int { 502 }

    public var description: String {
        "token endpoint of issuer \(issuer) not discovered: " + reasons.joined(separator: "; ")
    }
}
