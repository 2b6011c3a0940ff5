import Atomics
import NIOCore
import NIOHTTP1

/// Counts open client connections and closes new ones beyond `max_connections` at accept.
final class ConnectionLimiter: Sendable {
    let open = ManagedAtomic<Int>(0)
    let limit: @Sendable () -> Int
    let onRejected: @Sendable () -> Void

    init(limit: @escaping @Sendable () -> Int, onRejected: @escaping @Sendable () -> Void = {}) {
        self.limit = limit
        self.onRejected = onRejected
    }

    /// Called for each accepted channel before its pipeline is set up; false: close it now.
    func admit(_ channel: any Channel) -> Bool {
        let now = open.wrappingIncrementThenLoad(ordering: .relaxed)
        channel.closeFuture.whenComplete { _ in self.open.wrappingDecrement(ordering: .relaxed) }
        if now > limit() {
            onRejected()
            return false
        }
        return true
    }

    /// For a child channel initializer: closes a channel beyond the limit and fails its setup.
    func admitOrClose(_ channel: any Channel) throws {
        guard admit(channel) else {
            channel.close(promise: nil)
            throw ConnectionRefusedAtLimit()
        }
    }
}

extension NIOHTTPDecoderLimitConfiguration {
    /// The request head limits of both listeners: `max_header_bytes` for the head, 512 fields.
    static func heads(maxHeaderBytes: Int) -> NIOHTTPDecoderLimitConfiguration {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderListSize = maxHeaderBytes
        limits.maxHeaderFieldSize = maxHeaderBytes
        limits.maxHeaderFieldCount = 512
        return limits
    }
}
