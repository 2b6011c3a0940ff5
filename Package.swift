// swift-tools-version:6.1
import Foundation
import PackageDescription

/// The commit `callout-proxy version` prints: $CALLOUT_PROXY_COMMIT when set, else the short
/// HEAD of the git checkout this file is in (with "-dirty" for uncommitted changes), else
/// "unknown". SwiftPM reads this file again when it or the environment changes, so release
/// builds set CALLOUT_PROXY_COMMIT (see docs/operations.md, "Version").
func buildCommit() -> String {
    func clean(_ text: String) -> String? {
        let kept = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !kept.isEmpty, kept.count <= 64,
            kept.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.+".contains($0)) })
        else { return nil }
        return kept
    }
    if let given = ProcessInfo.processInfo.environment["CALLOUT_PROXY_COMMIT"].flatMap(clean) { return given }
    let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path
    let git = Process()
    git.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    git.arguments = ["git", "-C", folder, "describe", "--always", "--dirty", "--abbrev=12", "--exclude=*"]
    let output = Pipe()
    git.standardOutput = output
    git.standardError = FileHandle.nullDevice
    guard (try? git.run()) != nil else { return "unknown" }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    git.waitUntilExit()
    guard git.terminationStatus == 0 else { return "unknown" }
    return clean(String(decoding: data, as: UTF8.self)) ?? "unknown"
}

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

let package = Package(
    name: "callout-proxy",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "callout-proxy", targets: ["callout-proxy"]),
        // For the separate Benchmarks package (micro-benchmarks of the pure and token paths).
        .library(name: "CalloutCore", targets: ["CalloutCore"]),
        .library(name: "CalloutTokens", targets: ["CalloutTokens"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        // The commit the binary was built from, for `callout-proxy version`.
        .target(
            name: "CalloutBuildInfo",
            cSettings: [.define("CALLOUT_PROXY_COMMIT", to: "\"\(buildCommit())\"")]
        ),
        // Pure decisions and the configuration model: no sockets, no clocks taken directly.
        .target(
            name: "CalloutCore",
            dependencies: [
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        // Keys, JWT assertions, the token endpoint client and the token cache.
        .target(
            name: "CalloutTokens",
            dependencies: [
                "CalloutCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // Development helpers shipped with the binary: a verifying identity provider, an HTTPS
        // echo upstream and an ephemeral PKI, used by `demo`, `dev-idp` and the tests.
        .target(
            name: "CalloutDevTools",
            dependencies: [
                "CalloutCore",
                "CalloutTokens",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The token store replicas share (`[token_store]`): PostgreSQL through postgres-nio.
        .target(
            name: "CalloutTokenStore",
            dependencies: [
                "CalloutCore",
                "CalloutTokens",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The listener, forwarding, admin endpoints, metrics, reload and shutdown.
        .target(
            name: "CalloutServer",
            dependencies: [
                "CalloutCore",
                "CalloutTokens",
                "CalloutTokenStore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "callout-proxy",
            dependencies: [
                "CalloutBuildInfo",
                "CalloutCore",
                "CalloutTokens",
                "CalloutServer",
                "CalloutDevTools",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CalloutCoreTests",
            dependencies: ["CalloutCore"],
            swiftSettings: strict
        ),
        // Helpers shared by the test targets: signing material, the openssl CLI, a development
        // identity provider with an HTTP client that trusts it, captured logs.
        .target(
            name: "CalloutTestSupport",
            dependencies: [
                "CalloutCore", "CalloutTokens", "CalloutDevTools",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/CalloutTestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "CalloutDevToolsTests",
            dependencies: [
                "CalloutCore", "CalloutTokens", "CalloutDevTools", "CalloutTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CalloutTokensTests",
            dependencies: [
                "CalloutCore", "CalloutTokens", "CalloutDevTools", "CalloutTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CalloutServerTests",
            dependencies: [
                "CalloutCore", "CalloutTokens", "CalloutServer", "CalloutDevTools", "CalloutTokenStore",
                "CalloutTestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
