// swift-tools-version:6.1
// Micro-benchmarks for callout-proxy (ordo-one/package-benchmark). A separate package so the
// main build and CI stay lean: `cd Benchmarks && swift package benchmark`.
import PackageDescription

let package = Package(
    name: "callout-proxy-benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "callout-proxy", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
    ],
    targets: [
        .executableTarget(
            name: "CalloutBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "CalloutCore", package: "callout-proxy"),
                .product(name: "CalloutTokens", package: "callout-proxy"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            path: "Benchmarks/CalloutBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ],
    swiftLanguageModes: [.v6]
)
