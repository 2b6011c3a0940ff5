import NIOConcurrencyHelpers

/// A value of any type guarded by a lock (`NIOLock`). Unlike `NIOLockedValueBox` it does not ask
/// the value to be `Sendable`: the development identity provider keeps non-`Sendable` state in
/// one. Critical sections must be short and must never suspend or call out to user code.
package final class LockedState<State>: @unchecked Sendable {
    private let lock = NIOLock()
    private var state: State

    package init(_ state: State) {
        self.state = state
    }

    package func withLock<Result>(_ body: (inout State) throws -> Result) rethrows -> Result {
        try lock.withLock { try body(&state) }
    }
}
