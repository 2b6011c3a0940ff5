import AsyncHTTPClient
import CalloutCore
import CalloutTokens
import NIOCore
import NIOPosix
import NIOSSL

/// Builds the AsyncHTTPClient used for upstreams and identity providers.
public enum UpstreamClient {
    /// Pooled, HTTP/2 where offered, no redirects (3xx go back to the caller as they are), no
    /// decompression, trust roots = system + `ca_file` (from `materials`).
    public static func make(
        settings: ProxySettings, materials: CredentialMaterials, eventLoopGroup: any EventLoopGroup
    ) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: materials.tlsConfiguration(),
            redirectConfiguration: .disallow,
            timeout: .init(
                connect: .seconds(Int64(settings.connectTimeoutSeconds)),
                read: .seconds(Int64(settings.requestTimeoutSeconds))),
            connectionPool: .init(
                idleTimeout: .seconds(60),
                concurrentHTTP1ConnectionsPerHostSoftLimit: settings.upstreamMaxConnectionsPerHost),
            proxy: nil,
            ignoreUncleanSSLShutdown: false,
            decompression: .disabled)
        configuration.httpVersion = .automatic
        return HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: configuration)
    }

    /// A caller-safe description of a failure to reach an upstream: never a header or body.
    public static func describe(_ error: any Error) -> (timeout: Bool, reason: String) {
        if error is UpstreamTimeoutError { return (true, "timed out") }
        if error is UpstreamClosedError { return (false, "the endpoint closed the connection") }
        if case ChannelError.connectTimeout = error { return (true, "timed out") }
        if let e = error as? HTTPClientError {
            switch e {
            case .deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout: return (true, "timed out")
            case .remoteConnectionClosed: return (false, "the endpoint closed the connection")
            case .cancelled: return (false, "cancelled")
            case .bodyLengthMismatch: return (false, "body length mismatch")
            default: return (false, "HTTP client error")
            }
        }
        if let tls = error as? NIOSSLError {
            switch tls {
            case .uncleanShutdown: return (false, "the endpoint closed the connection")
            case .handshakeFailed:
                return (false, "TLS handshake failed (is the endpoint's certificate trusted? see ca_file)")
            default: return (false, "TLS error")
            }
        }
        if error is BoringSSLError || error is NIOSSLExtraError || "\(type(of: error))".contains("SSL") {
            return (false, "TLS handshake failed (is the endpoint's certificate trusted? see ca_file)")
        }
        if let e = error as? NIOConnectionError {
            return (
                false,
                e.connectionErrors.isEmpty
                    ? "connection failed (\(e.dnsAAAAError == nil && e.dnsAError == nil ? "no address" : "DNS lookup failed"))"
                    : "connection refused or unreachable"
            )
        }
        if error is ChannelError { return (false, "connection failed") }
        if let io = error as? IOError { return (false, "connection failed (errno \(io.errnoCode))") }
        return (false, "connection failed")
    }
}
