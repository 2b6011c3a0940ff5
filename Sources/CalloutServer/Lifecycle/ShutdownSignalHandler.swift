import NIOConcurrencyHelpers
import UnixSignals

/// Takes SIGTERM and SIGINT from the first moments of `serve` (their default action would kill
/// the process mid start-up) and passes them on once the servers run, as
/// ``ShutdownRequestStateMachine`` decides. The signals arrive through ServiceLifecycle's
/// `UnixSignalsSequence`.
public final class ShutdownSignalHandler: Sendable {
    private struct State {
        var machine = ShutdownRequestStateMachine()
        var stop: (@Sendable (String) -> Void)?
    }

    private let state: NIOLockedValueBox<State>
    private let listener: Task<Void, Never>

    /// Installs the handlers: from the return on, the signals no longer take their default action.
    public init(signals: [UnixSignal] = [.sigterm, .sigint]) async {
        let state = NIOLockedValueBox(State())
        let arrivals = await UnixSignalsSequence(trapping: signals)
        self.state = state
        self.listener = Task {
            for await signal in arrivals { Self.signalled(signal.description, state) }
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

    private static func signalled(_ name: String, _ state: NIOLockedValueBox<State>) {
        let (action, stop) = state.withLockedValue { s in (s.machine.signalled(name), s.stop) }
        if case .stop(let signal) = action { stop?(signal) }
    }

    public func cancel() {
        listener.cancel()
    }
}
