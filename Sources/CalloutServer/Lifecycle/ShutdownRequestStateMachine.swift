/// When a shutdown signal is acted on: one that arrives while `serve` is still starting up
/// (reading the configuration and keys, binding) is remembered and acted on as soon as there
/// is something to stop, or makes start-up stop early; later ones are ignored once stopping.
/// Events in, actions out, no I/O.
public struct ShutdownRequestStateMachine: Sendable {
    public enum State: Sendable, Equatable {
        case startingUp
        /// A signal (named) arrived before serving began.
        case requestedDuringStartUp(signal: String)
        case serving
        case stopping(signal: String)
    }

    public enum Action: Sendable, Equatable {
        case none
        /// Begin the graceful shutdown now; `signal` names what asked.
        case stop(signal: String)
    }

    public private(set) var state: State = .startingUp

    public init() {}

    /// A shutdown signal arrived.
    public mutating func signalled(_ signal: String) -> Action {
        switch state {
        case .startingUp:
            state = .requestedDuringStartUp(signal: signal)
            return .none
        case .serving:
            state = .stopping(signal: signal)
            return .stop(signal: signal)
        case .requestedDuringStartUp, .stopping:
            return .none
        }
    }

    /// The servers are up and can be stopped gracefully.
    public mutating func startedServing() -> Action {
        switch state {
        case .startingUp:
            state = .serving
            return .none
        case .requestedDuringStartUp(let signal):
            state = .stopping(signal: signal)
            return .stop(signal: signal)
        case .serving, .stopping:
            return .none
        }
    }

    /// The signal that arrived during start-up, if one did: start-up can stop at its next step.
    public var requestedDuringStartUp: String? {
        if case .requestedDuringStartUp(let signal) = state { return signal }
        return nil
    }
}
