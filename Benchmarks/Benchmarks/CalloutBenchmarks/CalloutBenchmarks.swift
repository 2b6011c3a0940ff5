import Benchmark
import CalloutCore
import CalloutTokens
import Crypto
import _CryptoExtras

// Micro-benchmarks of the per-callout work that does not touch a socket: assertion signing (a
// cache miss), formula evaluation, principal resolution, the token cache hit path and the request
// head work (addressing, URL join, outbound headers).

private let configText = """
    [proxy]
    listen = "127.0.0.1:8080"

    [[certificate]]
    name = "Bench_Signing"
    private_key_file = "bench.key"

    [[external_credential]]
    name = "Bench_API"
    identity_provider_url = "https://idp.bench.example/oauth2/token"
    signing_certificate = "Bench_Signing"
    scope = '{!"user:" & $User.Id}'
    \((1...20).map { i in """

      [[external_credential.principal]]
      name = "P\(i)"
      sequence_number = \(i)
      client_id = "client-\(i)"
      permission_sets = ["Set_\(i)", "Shared_\(i % 5)"]
      profiles = ["Profile_\(i)"]
    """ }.joined())

    [[named_credential]]
    name = "Bench"
    url = "https://api.bench.example/v2"
    external_credential = "Bench_API"
    """

private func material(_ pem: String) -> SigningMaterial {
    // swiftlint:disable:next force_try
    try! SigningMaterial(key: try! SigningKey(pem: pem))
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 10,
        maxDuration: .seconds(2),
        maxIterations: 1_000_000
    )

    // MARK: Assertion signing (what a token cache miss costs before the IdP round trip)

    let rsa = material(try! _RSA.Signing.PrivateKey(keySize: .bits2048).pemRepresentation)
    let p256 = material(P256.Signing.PrivateKey().pemRepresentation)
    for (name, algorithm, key) in [
        ("RS256", SigningAlgorithm.rs256, rsa), ("RS512", .rs512, rsa), ("ES256", .es256, p256),
    ] {
        Benchmark("Assertion signing \(name) (2048-bit RSA / P-256)") { benchmark in
            for _ in benchmark.scaledIterations {
                let request = AssertionRequest(
                    clientId: "bench-client", audience: "https://idp.bench.example/oauth2/token",
                    algorithm: algorithm, now: 1_760_000_000, jti: "5f0c8f7e-4b43-4f7e-9a53-0c1f5e3f4a10",
                    claims: [(name: "tenant", value: "acme")])
                blackHole(try! JWTAssertion.sign(request, with: key))
            }
        }
    }

    // MARK: Formula evaluation

    let user = FormulaContext(user: ["Id": "12345", "Department": "Finance"])
    for (name, source) in [
        ("constant", "session:role:reader"),
        ("merge field", #"{!"session:role:" & $User.Department & ":" & $User.Id}"#),
        ("HMAC chain", #"{!BASE64ENCODE(HMAC('SHA-256', $User.Id & ':' & $User.Department, HEX(HASH('SHA-256', 'k'))))}"#),
    ] {
        let formula = try! Formula(parsing: source)
        Benchmark("Formula evaluation: \(name)", configuration: .init(scalingFactor: .kilo)) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try! formula.evaluate(in: user))
            }
        }
    }

    // MARK: Principal resolution (identity headers -> caller identity -> lowest qualifying principal)

    let config = try! ConfigLoader.load(text: configText)
    let credential = config.externalCredential("Bench_API")!
    let resolver = IdentityResolver(settings: config.proxy, callers: config.callers)
    let named0 = config.namedCredential("Bench")!
    let identityHeaders: [(String, String)] = [
        ("Host", "127.0.0.1:8080"), ("User-Agent", "bench/1.0"), ("Accept", "*/*"),
        ("X-Callout-Permission-Sets", "Unrelated_A, Unrelated_B, Shared_3"), ("X-Callout-Profile", "Profile_17"),
        ("X-Callout-User-Id", "12345"), ("X-Callout-User-Department", "Finance"),
    ]
    let loopback: [UInt8] = [127, 0, 0, 1]
    Benchmark("Principal resolution (20 principals, identity headers)", configuration: .init(scalingFactor: .kilo)) {
        benchmark in
        for _ in benchmark.scaledIterations {
            guard case .success(let identity) = resolver.resolve(peer: loopback, headers: identityHeaders) else {
                fatalError("identity")
            }
            blackHole(PrincipalResolver.choose(credential, for: identity))
        }
    }

    // MARK: Token cache hit path

    let cache = TokenCache()
    let key = TokenCacheKey(externalCredential: "Bench_API", principal: "P3", scope: "user:12345")
    Benchmark(
        "Token cache hit", configuration: .init(scalingFactor: .kilo),
        closure: { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try! await cache.token(for: key) { fatalError("miss in the hit benchmark") })
            }
        },
        setup: {
            _ = try await cache.token(for: key) { TokenResponse(accessToken: "bench-token", expiresIn: 3600) }
        })

    // MARK: Token preparation (every callout: evaluate scope/claims, build the cache key)

    let preparation = TokenPreparation(
        materials: { CredentialMaterials(signing: ["bench_signing": rsa]) }, settings: { config.proxy })
    let demand = TokenDemand(
        credential: credential, principal: credential.principals[2],
        identity: CallerIdentity(permissionSets: ["Shared_3"], user: ["Id": "12345"]), namedCredential: named0)
    Benchmark("Token preparation (per-user scope formula + cache key)", configuration: .init(scalingFactor: .kilo)) {
        benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! preparation.prepare(demand))
        }
    }

    // MARK: Request head work (addressing + URL join + outbound headers)

    let incoming: [(String, String)] = [
        ("Host", "127.0.0.1:8080"), ("User-Agent", "curl/8.5.0"), ("Accept", "application/json"),
        ("Accept-Encoding", "gzip"), ("Connection", "keep-alive"), ("X-Request-Id", "6c3c9e5e-1f7a-4f6a-b1a4"),
        ("X-Callout-Permission-Sets", "Shared_3"), ("X-Callout-User-Id", "12345"), ("Content-Type", "application/json"),
        ("Via", "1.1 edge"),
    ]
    let named = config.namedCredential("Bench")!
    let isIdentityHeader = resolver.isIdentityHeader
    Benchmark("Request head: addressing + URL join + outbound headers", configuration: .init(scalingFactor: .kilo)) {
        benchmark in
        for _ in benchmark.scaledIterations {
            guard
                case .success(let address) = CalloutAddressing.address(
                    method: "GET", target: "/callout:Bench/items/42?expand=owner&limit=10", host: "127.0.0.1:8080"),
                case .success(let url) = URLJoin.join(
                    base: named.url.absoluteString, path: address.path, query: address.query)
            else { fatalError("addressing") }
            blackHole(url)
            blackHole(
                OutboundHeaders.build(
                    incoming: incoming, isIdentityHeader: isIdentityHeader,
                    customHeaders: [("X-Api-Version", "2")], authorization: "Bearer bench-token",
                    host: "api.bench.example", via: "1.1 callout-proxy"))
        }
    }

    Benchmark("Route: CalloutRouter.route (addressing, identity, principal)", configuration: .init(scalingFactor: .kilo))
    { benchmark in
        for _ in benchmark.scaledIterations {
            var alias: String?
            blackHole(
                CalloutRouter.route(
                    config: config, identityResolver: resolver, method: "GET",
                    target: "/callout:Bench/items/42?expand=owner", headers: identityHeaders, peer: loopback,
                    alias: &alias))
        }
    }
}
