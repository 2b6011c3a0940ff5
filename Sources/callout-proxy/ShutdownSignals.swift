import Dispatch
import Foundation

/// Calls `handler` once on SIGTERM or SIGINT (the default actions are suppressed meanwhile).
final class ShutdownSignals: @unchecked Sendable {
    private var sources: [any DispatchSourceSignal] = []

    init(handler: @escaping @Sendable (String) -> Void) {
        let once = OnceFlag()
        for (number, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                if once.claim() { handler(name) } else { exit(130) }
            }
            source.resume()
            sources.append(source)
        }
    }

    func cancel() {
        for source in sources { source.cancel() }
    }
}

final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    func claim() -> Bool {
        lock.withLock {
            defer { done = true }
            return !done
        }
    }
}
