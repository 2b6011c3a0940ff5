import Atomics
import NIOHTTP1

/// The id that ties a callout's access line to the upstream's logs: the caller's own
/// `X-Request-Id` when it sent a usable one, else one made here (a random per-process prefix and
/// a counter: unique without a random draw per request). Sent upstream and returned to the caller.
enum RequestID {
    static let header = "X-Request-Id"
    /// At most this long, visible ASCII only; anything else from a caller is replaced.
    static let maxLength = 128

    private static let prefix: String = {
        var generator = SystemRandomNumberGenerator()
        let value = generator.next() as UInt64
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }()
    private static let counter = ManagedAtomic<UInt64>(0)

    /// A fresh id.
    static func make() -> String {
        // Built in one buffer sized once: concatenation would allocate for each step.
        var id = String()
        id.reserveCapacity(prefix.utf8.count + 21)
        id += prefix
        id += "-"
        id += String(counter.wrappingIncrementThenLoad(ordering: .relaxed))
        return id
    }

    /// The caller's id when usable.
    static func fromCaller(_ headers: HTTPHeaders) -> String? {
        guard let value = headers.first(name: header), !value.isEmpty, value.utf8.count <= maxLength,
            value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f })
        else { return nil }
        return value
    }
}
