import NIOCore
import NIOPosix
import NIOSSL

/// The upstream closed the connection before the response ended.
struct UpstreamClosedError: Error {}

/// No response head within `request_timeout_seconds`, or a response body silent that long.
struct UpstreamTimeoutError: Error {}

/// What a failed upstream exchange is called in problems and logs.
enum UpstreamFailure {
    /// The connection closed or was reset under the exchange: on a reused connection, the upstream
    /// most likely closed it as idle before it saw the request.
    static func isConnectionLoss(_ error: any Error) -> Bool {
        error is UpstreamClosedError || error is IOError
    }

    /// A caller-safe description of a failure to reach an upstream: never a header or body.
    static func describe(_ error: any Error) -> (timeout: Bool, reason: String) {
        if error is UpstreamTimeoutError { return (true, "timed out") }
        if error is UpstreamClosedError { return (false, "the endpoint closed the connection") }
        if let desync = error as? UpstreamDesyncError {
            return (false, "the endpoint answered out of step with its requests (\(desync.reason.rawValue))")
        }
        if case ChannelError.connectTimeout = error { return (true, "timed out") }
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
        if let io = error as? IOError {
            if io.errnoCode == ECONNRESET { return (false, "the endpoint reset the connection") }
            return (false, "connection failed (errno \(io.errnoCode))")
        }
        return (false, "connection failed")
    }
}
