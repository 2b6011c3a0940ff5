// swift-tools-version:6.1
import PackageDescription

// Fuzz targets for callout-proxy's pure parsers, kept out of the main build. Build and run them
// with `scripts/fuzz.sh [seconds]` (libFuzzer + AddressSanitizer).
//
// The targets use the root package's `CalloutCore` library product.
var targets: [Target] = []
targets.append(.target(name: "FuzzDriver", path: "Sources/FuzzDriver"))
for name in ["FuzzConfig", "FuzzFormula", "FuzzAddressing", "FuzzResponseFraming"] {
    targets.append(
        .executableTarget(
            name: name, dependencies: [.product(name: "CalloutCore", package: "callout-proxy"), "FuzzDriver"],
            path: "Sources/\(name)"))
}

let package = Package(
    name: "callout-proxy-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "callout-proxy", path: "..")],
    targets: targets,
    swiftLanguageModes: [.v6]
)
