import CalloutCore
import FuzzDriver

/// Any text: `ConfigLoader.load(text:)` either returns a validated configuration or throws a
/// `ConfigError` with at least one issue; it never traps.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        _ = try ConfigLoader.load(text: text, file: "fuzz.conf", baseDirectory: "/nonexistent-fuzz")
    } catch {
        precondition(!error.issues.isEmpty, "a ConfigError without issues")
    }
    return 0
}

/// The entry point SwiftPM links as `main` (see FuzzDriver.h).
@_cdecl("FuzzConfig_main")
public func fuzzConfigMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    fuzz_driver_run(argc, argv) { data, size in
        guard let data else { return 0 }
        return fuzzConfig(data, size)
    }
}
