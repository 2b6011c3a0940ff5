import NIOConcurrencyHelpers

/// What `/readyz` reports: listeners bound, not draining, and (with `ready_requires_tokens`)
/// every external credential has fetched a token at least once.
public final class Readiness: Sendable {
    private struct State {
        var listening = false
        var draining = false
        var fetchedOnce: Set<String> = []
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    func setListening() { state.withLockedValue { $0.listening = true } }
    func setDraining() { state.withLockedValue { $0.draining = true } }
    func tokenFetched(externalCredential: String) {
        _ = state.withLockedValue { $0.fetchedOnce.insert(externalCredential) }
    }

    public var isDraining: Bool { state.withLockedValue { $0.draining } }

    public func hasFetched(_ externalCredential: String) -> Bool {
        state.withLockedValue { $0.fetchedOnce.contains(externalCredential) }
    }

    /// Reasons not to be ready; empty when ready.
    func waitingFor(externalCredentials: [String], requireTokens: Bool) -> [String] {
        state.withLockedValue { s in
            var reasons: [String] = []
            if !s.listening { reasons.append("listeners") }
            if s.draining { reasons.append("shutting_down") }
            if requireTokens {
                reasons += externalCredentials.filter { !s.fetchedOnce.contains($0) }.map { "token:\($0)" }
            }
            return reasons
        }
    }
}
