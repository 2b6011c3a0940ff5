// swift-tools-version:6.1
import Foundation
import PackageDescription

// Fuzz targets for callout-proxy's pure parsers, kept out of the main build. Build and run them
// with `scripts/fuzz.sh [seconds]` (libFuzzer + AddressSanitizer).
//
// When the root package exports a `CalloutCore` library product, the targets use it through
// `.package(path: "..")`. Until then they compile the same sources from `Mirror/CalloutCore`, a
// plain copy that `scripts/fuzz.sh` refreshes from `../Sources/CalloutCore` before each build
// (git-ignored; no symlinks, since SwiftPM refuses target paths outside the package root).
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let rootManifest = (try? String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8)) ?? ""
let rootExportsCore = rootManifest.contains(#".library(name: "CalloutCore""#)

let core: Target.Dependency =
    rootExportsCore ? .product(name: "CalloutCore", package: "callout-proxy") : "CalloutCore"

var dependencies: [Package.Dependency] = []
var targets: [Target] = []
if rootExportsCore {
    dependencies.append(.package(name: "callout-proxy", path: ".."))
} else {
    dependencies += [
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
    ]
    targets.append(
        .target(
            name: "CalloutCore",
            dependencies: [
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Mirror/CalloutCore",
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ))
}
targets.append(.target(name: "FuzzDriver", path: "Sources/FuzzDriver"))
for name in ["FuzzConfig", "FuzzFormula", "FuzzAddressing"] {
    targets.append(.executableTarget(name: name, dependencies: [core, "FuzzDriver"], path: "Sources/\(name)"))
}

let package = Package(
    name: "callout-proxy-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: dependencies,
    targets: targets,
    swiftLanguageModes: [.v6]
)
