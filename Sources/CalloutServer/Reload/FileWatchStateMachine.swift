/// Decides when the watched files have changed enough to reload: a change is applied once two
/// polls in a row agree on it (a file caught half-written is not read), or after
/// ``maxSettlingPolls`` polls if it keeps changing. Events in, actions out, no I/O.
public struct FileWatchStateMachine: Sendable {
    public enum State: Sendable, Equatable {
        /// Nothing changed since `baseline`, the files the running configuration was read from.
        case watching(baseline: FileSnapshot)
        /// `candidate` differs from `baseline`; waiting for a poll that sees it again.
        case settling(baseline: FileSnapshot, candidate: FileSnapshot, polls: Int)
    }

    public enum Action: Sendable, Equatable {
        case none
        /// Reload now; `changed` names the paths that differ.
        case reload(changed: [String])
    }

    /// Polls a change may keep moving before it is applied anyway.
    public static let maxSettlingPolls = 5

    public private(set) var state: State

    /// Starts from the files as they were when the running configuration was read.
    public init(baseline: FileSnapshot) {
        state = .watching(baseline: baseline)
    }

    /// One poll's snapshot of the watched paths.
    public mutating func observed(_ snapshot: FileSnapshot) -> Action {
        switch state {
        case .watching(let baseline):
            if snapshot == baseline { return .none }
            state = .settling(baseline: baseline, candidate: snapshot, polls: 1)
            return .none
        case .settling(let baseline, let candidate, let polls):
            if snapshot == baseline {
                state = .watching(baseline: baseline)
                return .none
            }
            if snapshot == candidate || polls + 1 >= Self.maxSettlingPolls {
                // The snapshot becomes the baseline whether the reload succeeds or is refused: a
                // refused file is reported once, and the next change is tried again.
                state = .watching(baseline: snapshot)
                return .reload(changed: WatchedFiles.changed(from: baseline, to: snapshot))
            }
            state = .settling(baseline: baseline, candidate: snapshot, polls: polls + 1)
            return .none
        }
    }

    /// After a reload the configuration may name other files: keep what is known of the paths
    /// still watched (so a change made during the reload is still seen), take `fresh` for paths
    /// new to the watch, and forget the rest.
    public mutating func watch(paths: [String], fresh: FileSnapshot) {
        let baseline: FileSnapshot
        switch state {
        case .watching(let b): baseline = b
        case .settling(let b, _, _): baseline = b
        }
        var next: FileSnapshot = [:]
        for path in paths { next[path] = baseline[path] ?? fresh[path] ?? .missing }
        // A change still settling is compared again, from the next poll, against this baseline.
        state = .watching(baseline: next)
    }
}
