import Atomics
import NIOCore

/// The data plane's open client connections, for draining at shutdown, without a lock shared
/// by the event loops: each loop keeps its own handlers and only that loop touches them. A
/// request costs nothing here — a connection checks ``isDraining`` (one atomic load) when its
/// response ends; connecting and disconnecting touch the loop's own set and one counter.
final class ConnectionTracker: Sendable {
    /// One loop's connections; used on that loop only.
    private final class LoopConnections: @unchecked Sendable {
        var handlers: [ObjectIdentifier: CalloutHandler] = [:]
    }

    private let loops: [ObjectIdentifier: (loop: any EventLoop, connections: LoopConnections)]
    private let draining = ManagedAtomic(false)
    private let open = ManagedAtomic(0)

    init(group: any EventLoopGroup) {
        var loops: [ObjectIdentifier: (loop: any EventLoop, connections: LoopConnections)] = [:]
        for loop in group.makeIterator() { loops[ObjectIdentifier(loop)] = (loop, LoopConnections()) }
        self.loops = loops
    }

    var isDraining: Bool { draining.load(ordering: .relaxed) }

    /// Connections open now, all loops together.
    var count: Int { open.load(ordering: .relaxed) }

    /// Called on the handler's loop when its connection opens.
    func add(_ handler: CalloutHandler, on loop: any EventLoop) {
        guard let entry = loops[ObjectIdentifier(loop)] else { return }
        loop.assertInEventLoop()
        if entry.connections.handlers.updateValue(handler, forKey: ObjectIdentifier(handler)) == nil {
            open.wrappingIncrement(ordering: .relaxed)
        }
    }

    /// Called on the handler's loop when its connection closes.
    func remove(_ handler: CalloutHandler, on loop: any EventLoop) {
        guard let entry = loops[ObjectIdentifier(loop)] else { return }
        loop.assertInEventLoop()
        if entry.connections.handlers.removeValue(forKey: ObjectIdentifier(handler)) != nil {
            open.wrappingDecrement(ordering: .relaxed)
        }
    }

    /// Begins draining: idle connections close now, busy ones when their response ends.
    func drain() {
        draining.store(true, ordering: .relaxed)
        forEachHandler { $0.drainRequested() }
    }

    /// Closes every connection (the grace period is over).
    func closeAll() {
        forEachHandler { $0.closeNow() }
    }

    /// The channels of open connections (for tests that inspect their sockets).
    func channels() async -> [any Channel] {
        var all: [any Channel] = []
        for entry in loops.values {
            let connections = entry.connections
            all += (try? await entry.loop.submit { connections.handlers.values.compactMap(\.channel) }.get()) ?? []
        }
        return all
    }

    private func forEachHandler(_ body: @escaping @Sendable (CalloutHandler) -> Void) {
        for entry in loops.values {
            let connections = entry.connections
            entry.loop.execute {
                for handler in Array(connections.handlers.values) { body(handler) }
            }
        }
    }
}
