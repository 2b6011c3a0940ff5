import Dispatch
import Foundation
import NIOConcurrencyHelpers

/// Takes SIGTERM and SIGINT from the first moments of `serve` (their default action would kill
/// the process mid start-up) and passes them on once the servers run, as
/// ``ShutdownRequestStateMachine`` decides.
///
/// `@unchecked`: the dispatch sources are set once in `init` and are themselves thread-safe; the
/// rest of the state is behind a lock.
public final class ShutdownSignalHandler: @unchecked Sendable {
    private struct State {
        var machine = ShutdownRequestStateMachine()
        var stop: (@Sendable (String) -> Void)?
    }

    private let state = NIOLockedValueBox(State())
    private let sources: [any DispatchSourceSignal]

    /// Installs the handlers: from now on the signals no longer take their default action.
    public init(signals: [(number: Int32, name: String)] = [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")]) {
        let queue = DispatchQueue(label: "callout-proxy.shutdown-signals")
        sources = signals.map { number, _ in
            signal(number, SIG_IGN)
            return DispatchSource.makeSignalSource(signal: number, queue: queue)
        }
        for (source, signal) in zip(sources, signals) {
            source.setEventHandler { [weak self] in self?.signalled(signal.name) }
            source.resume()
        }
    }

    /// The signal that arrived before ``startedServing(stop:)``, if any.
    public var requestedDuringStartUp: String? { state.withLockedValue { $0.machine.requestedDuringStartUp } }

    /// The servers run: `stop` begins their graceful shutdown, at once if a signal came earlier.
    public func startedServing(stop: @escaping @Sendable (String) -> Void) {
        let action = state.withLockedValue { s in
            s.stop = stop
            return s.machine.startedServing()
        }
        if case .stop(let signal) = action { stop(signal) }
    }

    private func signalled(_ name: String) {
        let (action, stop) = state.withLockedValue { s in (s.machine.signalled(name), s.stop) }
        if case .stop(let signal) = action { stop?(signal) }
    }

    public func cancel() {
        for source in sources { source.cancel() }
    }
}
