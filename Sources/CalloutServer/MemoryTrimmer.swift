import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Gives memory back to the system once the proxy goes quiet. A burst of callouts leaves
/// glibc's per-thread malloc arenas holding their peak, so a process that served a load test sat
/// at several times its starting RSS long after the last connection closed. When no client
/// connection has been open for a whole check interval, the arenas are trimmed once
/// (`malloc_trim`), and again only after new traffic.
final class MemoryTrimmer: Sendable {
    private let task: RepeatedTask

    /// `openConnections` is read on each check (every `interval`).
    init(eventLoop: any EventLoop, interval: TimeAmount = .seconds(5), openConnections: @escaping @Sendable () -> Int) {
        let state = NIOLockedValueBox(State())
        task = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            let busy = openConnections() > 0
            let trim = state.withLockedValue { state in
                let decision = state.check(busy: busy)
                state = decision.next
                return decision.trim
            }
            if trim { Self.trim() }
        }
    }

    func cancel() { task.cancel() }

    /// The rule, without the clock or the allocator: trim after a quiet interval that follows traffic.
    struct State: Equatable {
        /// Traffic was seen since the last trim.
        var dirty = true
        /// The previous check found connections open.
        var wasBusy = true

        func check(busy: Bool) -> (next: State, trim: Bool) {
            if busy { return (State(dirty: true, wasBusy: true), false) }
            // Quiet now and at the previous check: a whole interval without connections.
            if dirty && !wasBusy { return (State(dirty: false, wasBusy: false), true) }
            return (State(dirty: dirty, wasBusy: false), false)
        }
    }

    /// glibc's `malloc_trim`, looked up at run time (its header is not part of the Glibc module;
    /// other C libraries do not have it, and then nothing is trimmed).
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        #if canImport(Glibc)
            guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
            return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
        #else
            return nil
        #endif
    }()

    static func trim() {
        _ = mallocTrim?(0)
    }
}
