import AsyncHTTPClient
import CalloutCore
import CalloutDevTools
import CalloutTestSupport
import CalloutTokens
import Crypto
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Testing

/// An HTTPS echo upstream on 127.0.0.1 (certificate from a development CA) and a client that
/// trusts the CA.
private struct EchoFixture {
    let upstream: EchoUpstream
    let httpClient: HTTPClient
    let logs: CapturingLogs

    static func with<T>(
        tls: Bool = true,
        maxRecordedRequests: Int = 1_000,
        tokenCheck: EchoUpstream.TokenCheck? = nil,
        _ body: (EchoFixture) async throws -> T
    ) async throws -> T {
        let pki = try DevelopmentPKI.generate()
        let logs = CapturingLogs()
        let material = DevelopmentTLSMaterial(
            certificatePEM: pki.leafCertificatePEM, privateKeyPEM: pki.leafPrivateKeyPEM)
        let upstream = try await EchoUpstream.start(
            configuration: .init(tls: tls ? material : nil, maxRecordedRequests: maxRecordedRequests),
            tokenCheck: tokenCheck, logger: logs.logger("echo"))
        let httpClient = try makeClient(trusting: pki.caCertificatePEM)
        let fixture = EchoFixture(upstream: upstream, httpClient: httpClient, logs: logs)
        do {
            let result = try await body(fixture)
            try await httpClient.shutdown()
            try await upstream.shutdown()
            return result
        } catch {
            try? await httpClient.shutdown()
            try? await upstream.shutdown()
            throw error
        }
    }

    func request(_ pathAndQuery: String, post: Bool = false, headers: [(String, String)] = []) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: upstream.baseURL + pathAndQuery)
        if post { request.method = .POST }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        return request
    }

    func send(_ request: HTTPClientRequest, timeout: TimeAmount = .seconds(10)) async throws -> EchoReply {
        let response = try await httpClient.execute(request, timeout: timeout)
        let body = try await response.body.collect(upTo: 1 << 20)
        return EchoReply(
            status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
            body: String(buffer: body), byteCount: body.readableBytes)
    }
}

/// A response, read whole.
private struct EchoReply {
    let status: Int
    let headers: [(name: String, value: String)]
    let body: String
    let byteCount: Int

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
}

/// An HTTPClient (redirects off) that trusts `caPEM`.
private func makeClient(trusting caPEM: String) throws -> HTTPClient {
    var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
    tlsConfiguration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
    return HTTPClient(
        eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
        configuration: HTTPClient.Configuration(tlsConfiguration: tlsConfiguration, redirectConfiguration: .disallow))
}

private func json(_ text: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
}

private func hex(_ digest: SHA256.Digest) -> String {
    digest.map { byte in
        let text = String(byte, radix: 16)
        return byte < 16 ? "0" + text : text
    }.joined()
}

@Suite struct EchoUpstreamTests {
    @Test func echoesAStreamedRequest() async throws {
        try await EchoFixture.with { fixture in
            // 3 MiB + 5 bytes in 64 KiB chunks, streamed.
            let chunks =
                (0..<48).map { index in
                    ByteBuffer(bytes: [UInt8](repeating: UInt8(index), count: 64 * 1024))
                } + [ByteBuffer(string: "tail!")]
            var hasher = SHA256()
            for chunk in chunks { hasher.update(data: Array(chunk.readableBytesView)) }
            let total = chunks.reduce(0) { $0 + $1.readableBytes }
            var request = fixture.request(
                "/v2/items?limit=5&q=a%20b", post: true,
                headers: [("X-One", "1"), ("Authorization", "Bearer opaque-token-1"), ("X-Two", "2")])
            request.body = .stream(
                AsyncStream<ByteBuffer> { continuation in
                    for chunk in chunks { continuation.yield(chunk) }
                    continuation.finish()
                }, length: .known(Int64(total)))

            let reply = try await fixture.send(request)
            let (status, body) = (reply.status, reply.body)
            #expect(status == 200)
            #expect(reply.header("Content-Type") == "application/json")
            let echo = try json(body)
            #expect(echo["method"] as? String == "POST")
            #expect(echo["path"] as? String == "/v2/items")
            #expect(echo["query"] as? String == "limit=5&q=a%20b")
            #expect(echo["body_bytes"] as? Int == total)
            #expect(echo["body_sha256"] as? String == hex(hasher.finalize()))
            #expect(echo["authorization"] as? String == "Bearer opaque-token-1")
            #expect(echo["token_valid"] is NSNull)
            let names = try #require(echo["headers"] as? [[String]]).map { $0[0] }
            let one = try #require(names.firstIndex(of: "X-One"))
            let auth = try #require(names.firstIndex(of: "Authorization"))
            let two = try #require(names.firstIndex(of: "X-Two"))
            #expect(one < auth && auth < two)

            let recorded = try #require(fixture.upstream.requests.last)
            #expect(recorded.bodyBytes == total && recorded.status == 200)
            #expect(recorded.bodySHA256 == echo["body_sha256"] as? String)
            #expect(recorded.authorization == "Bearer opaque-token-1")
            #expect(!recorded.description.contains("opaque-token-1"))
            #expect(fixture.upstream.requestCount == 1)
            #expect(!fixture.logs.all.isEmpty)
            #expect(!fixture.logs.all.contains { $0.contains("opaque-token-1") })
        }
    }

    @Test func respondBytesStreamsThatManyBytes() async throws {
        try await EchoFixture.with { fixture in
            let count = 5 * 1024 * 1024 + 7
            let response = try await fixture.httpClient.execute(
                fixture.request("/download?respond_bytes=\(count)"), timeout: .seconds(30))
            #expect(response.status == .ok)
            #expect(response.headers.first(name: "Content-Length") == String(count))
            var received = 0
            for try await chunk in response.body { received += chunk.readableBytes }
            #expect(received == count)

            let empty = try await fixture.send(fixture.request("/download?respond_bytes=0"))
            #expect(empty.status == 200 && empty.body.isEmpty)
        }
    }

    @Test func scriptedStatuses() async throws {
        try await EchoFixture.with { fixture in
            fixture.upstream.setBehavior(.status(503))
            let unavailable = try await fixture.send(fixture.request("/a"))
            #expect(unavailable.status == 503)
            #expect(try json(unavailable.body)["path"] as? String == "/a")

            fixture.upstream.setBehavior(.statusSequence([500, 401]))
            #expect(try await fixture.send(fixture.request("/b")).status == 500)
            let second = try await fixture.send(fixture.request("/b"))
            #expect(second.status == 401)
            #expect(second.header("WWW-Authenticate") == #"Bearer error="invalid_token""#)
            #expect(try await fixture.send(fixture.request("/b")).status == 200)
            #expect(fixture.upstream.behavior == .echo)

            fixture.upstream.setBehavior(.unauthorizedForever)
            for _ in 0..<3 {
                let denied = try await fixture.send(fixture.request("/c"))
                #expect(denied.status == 401)
                #expect(denied.header("WWW-Authenticate") == #"Bearer error="invalid_token""#)
            }
            #expect(fixture.upstream.requests.map(\.status) == [503, 500, 401, 200, 401, 401, 401])
        }
    }

    @Test func redirects() async throws {
        try await EchoFixture.with { fixture in
            fixture.upstream.setBehavior(.redirect(to: "https://elsewhere.invalid/next"))
            let found = try await fixture.send(fixture.request("/old"))
            #expect(found.status == 302)
            #expect(found.header("Location") == "https://elsewhere.invalid/next")

            fixture.upstream.setBehavior(.redirect(to: "/moved", status: 307))
            let temporary = try await fixture.send(fixture.request("/old", post: true))
            #expect(temporary.status == 307)
            #expect(temporary.header("Location") == "/moved")
        }
    }

    @Test func resetAfterHeadAndCloseImmediatelyFailTheClient() async throws {
        try await EchoFixture.with { fixture in
            fixture.upstream.setBehavior(.resetAfterHead)
            await #expect(throws: (any Error).self) {
                _ = try await fixture.send(fixture.request("/reset"))
            }
            #expect(fixture.upstream.requests.last?.path == "/reset")

            fixture.upstream.setBehavior(.closeImmediately)
            await #expect(throws: (any Error).self) {
                _ = try await fixture.send(fixture.request("/closed"))
            }
            #expect(fixture.upstream.requests.last?.status == 0)

            fixture.upstream.setBehavior(.echo)
            let fine = try await fixture.send(fixture.request("/fine"))
            #expect(fine.status == 200)
        }
    }

    @Test func slowHeadersOutlastAShortClientDeadline() async throws {
        try await EchoFixture.with(tls: false) { fixture in
            fixture.upstream.setBehavior(.slowHeaders(seconds: 30))
            await #expect(throws: HTTPClientError.deadlineExceeded) {
                _ = try await fixture.send(fixture.request("/slow"), timeout: .milliseconds(200))
            }
            fixture.upstream.setBehavior(.slowHeaders(seconds: 0.05))
            let slow = try await fixture.send(fixture.request("/slow"))
            #expect(slow.status == 200)
        }
    }

    @Test func slowBodyArrivesWhole() async throws {
        try await EchoFixture.with { fixture in
            fixture.upstream.setBehavior(.slowBody(chunks: 4, delay: 0.02))
            let echo = try await fixture.send(fixture.request("/drip"))
            #expect(echo.status == 200)
            #expect(try json(echo.body)["path"] as? String == "/drip")
            let bytes = try await fixture.send(fixture.request("/drip?respond_bytes=1001"))
            #expect(bytes.byteCount == 1001)
        }
    }

    @Test func tokenCheckFalseAnswers401() async throws {
        try await EchoFixture.with(tokenCheck: { $0 == "good" ? true : ($0 == "bad" ? false : nil) }) {
            fixture in
            let good = try await fixture.send(fixture.request("/t", headers: [("Authorization", "Bearer good")]))
            #expect(good.status == 200)
            #expect(try json(good.body)["token_valid"] as? Bool == true)

            let bad = try await fixture.send(fixture.request("/t", headers: [("Authorization", "Bearer bad")]))
            #expect(bad.status == 401)
            #expect(bad.header("WWW-Authenticate") == #"Bearer error="invalid_token""#)
            #expect(try json(bad.body)["token_valid"] as? Bool == false)

            let unknown = try await fixture.send(fixture.request("/t", headers: [("Authorization", "Bearer ?")]))
            #expect(unknown.status == 200)
            let none = try await fixture.send(fixture.request("/t"))
            #expect(none.status == 200)
            #expect(try json(none.body)["token_valid"] is NSNull)
        }
    }

    @Test func plainHTTPAndBoundedRecording() async throws {
        try await EchoFixture.with(tls: false, maxRecordedRequests: 2) { fixture in
            #expect(fixture.upstream.baseURL.hasPrefix("http://127.0.0.1:"))
            for index in 0..<3 {
                let reply = try await fixture.send(fixture.request("/r\(index)"))
                #expect(reply.status == 200)
            }
            #expect(fixture.upstream.requests.map(\.path) == ["/r1", "/r2"])
            #expect(fixture.upstream.requestCount == 3)
        }
    }

    /// The development identity provider issues a token for a configured client; the echo
    /// upstream accepts it until it is revoked.
    @Test func tokenFromTheDevelopmentIdentityProvider() async throws {
        let pki = try DevelopmentPKI.generate()
        let tls = DevelopmentTLSMaterial(certificatePEM: pki.leafCertificatePEM, privateKeyPEM: pki.leafPrivateKeyPEM)
        let identity = try DevelopmentPKI.generateSigningIdentity(commonName: "e2e")
        let material = try SigningMaterial.load(
            privateKeyPEM: identity.privateKeyPEM, certificatePEM: identity.certificatePEM, passphrase: nil)
        let clients = ConfiguredClients([
            (clientId: "e2e-client", key: material.key.verificationKey, algorithm: .rs256, audience: nil)
        ])
        let provider = try await DevelopmentIdentityProvider.start(
            configuration: .init(tls: tls), clients: clients.clientIds, verifier: clients.verifier())
        let upstream = try await EchoUpstream.start(
            configuration: .init(tls: tls), tokenCheck: { provider.isValid(token: $0) != nil })
        let httpClient = try makeClient(trusting: pki.caCertificatePEM)
        func shutdown() async {
            try? await httpClient.shutdown()
            try? await upstream.shutdown()
            try? await provider.shutdown()
        }
        do {
            let assertion = try JWTAssertion.sign(
                AssertionRequest(
                    clientId: "e2e-client", audience: provider.tokenEndpointURL,
                    now: Int64(Date().timeIntervalSince1970)),
                with: material)
            let exchange = TokenEndpointClient(
                httpClient: httpClient, limits: .init(timeout: .seconds(10)), logger: CapturingLogs().logger())
            let token = try await exchange.fetchToken(
                TokenRequest(
                    identityProviderURL: provider.tokenEndpointURL, clientId: "e2e-client",
                    clientAssertion: assertion)
            ).accessToken

            func call() async throws -> Int {
                var request = HTTPClientRequest(url: upstream.baseURL + "/api")
                request.headers.add(name: "Authorization", value: "Bearer \(token)")
                let response = try await httpClient.execute(request, timeout: .seconds(10))
                _ = try await response.body.collect(upTo: 1 << 20)
                return Int(response.status.code)
            }
            #expect(try await call() == 200)
            provider.revoke(token: token)
            #expect(try await call() == 401)
        } catch {
            await shutdown()
            throw error
        }
        await shutdown()
    }
}
