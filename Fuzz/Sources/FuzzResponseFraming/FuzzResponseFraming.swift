import CalloutCore
import FuzzDriver

/// The input is raw upstream bytes; its first byte picks a split point and whether the request
/// was HEAD. The framer never traps, and feeding the bytes in two pieces gives the same outcome
/// as feeding them at once (a read boundary never changes where a response ends).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzResponseFraming(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let control = data[0]
    let bytes = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    let head = control & 1 == 1
    var whole = ResponseFramer(requestMethodIsHEAD: head)
    let once = whole.consume(bytes)
    let cut = bytes.isEmpty ? 0 : Int(control >> 1) % (bytes.count + 1)
    var split = ResponseFramer(requestMethodIsHEAD: head)
    split.consume(UnsafeRawBufferPointer(rebasing: bytes[..<cut]))
    let twice = split.consume(UnsafeRawBufferPointer(rebasing: bytes[cut...]))
    precondition(once == twice, "a read boundary changed the outcome: \(once) vs \(twice)")
    if case .ended(let extra) = once { precondition(extra >= 0 && extra <= bytes.count, "extra bytes out of range") }
    return 0
}

/// The entry point SwiftPM links as `main` (see FuzzDriver.h).
@_cdecl("FuzzResponseFraming_main")
public func fuzzResponseFramingMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>)
    -> CInt
{
    fuzz_driver_run(argc, argv) { data, size in
        guard let data else { return 0 }
        return fuzzResponseFraming(data, size)
    }
}
