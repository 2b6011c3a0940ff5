import NIOConcurrencyHelpers
import NIOCore

/// Open client connections and whether each is serving a request, so shutdown can close idle
/// ones at once and busy ones after their current callout (or when the grace period ends).
final class ConnectionRegistry: Sendable {
    private struct Entry {
        let channel: any Channel
        var busy: Bool
    }

    private let state = NIOLockedValueBox<(entries: [ObjectIdentifier: Entry], draining: Bool)>(([:], false))

    func add(_ channel: any Channel) {
        state.withLockedValue { $0.entries[ObjectIdentifier(channel)] = Entry(channel: channel, busy: false) }
    }

    func remove(_ channel: any Channel) {
        _ = state.withLockedValue { $0.entries.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// Marks the connection busy or idle. Returns false when the connection should close now
    /// (shutdown has begun and it is going idle).
    func setBusy(_ channel: any Channel, _ busy: Bool) -> Bool {
        state.withLockedValue { s in
            s.entries[ObjectIdentifier(channel)]?.busy = busy
            return busy || !s.draining
        }
    }

    var isDraining: Bool { state.withLockedValue { $0.draining } }

    /// Begins draining: idle connections close now.
    func drain() {
        let idle = state.withLockedValue { s -> [any Channel] in
            s.draining = true
            return s.entries.values.filter { !$0.busy }.map(\.channel)
        }
        for channel in idle { channel.close(promise: nil) }
    }

    /// Closes every connection (the grace period is over).
    func closeAll() {
        let all = state.withLockedValue { $0.entries.values.map(\.channel) }
        for channel in all { channel.close(promise: nil) }
    }

    var count: Int { state.withLockedValue { $0.entries.count } }
}
