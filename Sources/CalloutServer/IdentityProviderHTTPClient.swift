import AsyncHTTPClient
import CalloutCore
import CalloutTokens
import NIOCore
import NIOPosix

/// Builds the AsyncHTTPClient used for identity providers (the data plane has its own upstream
/// pool, ``UpstreamPool``).
public enum IdentityProviderHTTPClient {
    /// Pooled, HTTP/2 where offered, one connection attempt per request, no redirects (3xx go back to the caller as they are), no
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
        // A refused or unreachable identity provider fails the token request at once, instead of
        // being retried with backoff until the connect timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: configuration)
    }
}
