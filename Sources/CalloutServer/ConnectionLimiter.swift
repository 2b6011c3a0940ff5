import Atomics
import NIOCore

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
}
