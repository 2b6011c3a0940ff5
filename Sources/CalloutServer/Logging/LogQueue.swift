/// The bounded buffer between the threads that log and the one thread that writes, and the
/// writer's state: lines are appended in place (no per-line allocation once the buffer has
/// grown), the writer takes everything at once by swapping buffers, so it writes in batches.
///
/// Pure: no locks, clocks or file descriptors are taken here. ``LogLineWriter`` holds it under
/// its lock and performs the actions it returns.
struct LogQueue {
    /// Bytes waiting; lines are refused (and counted as dropped) while this is reached.
    let capacity: Int
    /// A batch this large is written without waiting for more lines.
    let batchBytes: Int

    private(set) var pending: [UInt8] = []
    private var pendingLines = 0
    /// Lines accepted since the start; a flush waits until `written` reaches it.
    private(set) var accepted = 0
    /// Lines written, or lost to a failed write, since the start.
    private(set) var written = 0
    /// Lines refused because the buffer was full, or lost because a write failed.
    private(set) var dropped = 0
    var timestamp = LogTimestamp()

    enum WriterState: Equatable {
        /// Waiting for a first line: the next append must wake it.
        case asleep
        /// Woken; may wait a little for more lines to make a batch.
        case awake
        /// Waited for more lines once; writes whatever is there next.
        case gathering
        /// Writes what is left, then ends.
        case stopping
        case stopped
    }
    private(set) var writer = WriterState.awake
    /// A full batch has been signalled since the writer last took one.
    private var batchSignalled = false
    /// Flushes waiting for the writer: it writes at once instead of gathering.
    private var flushesWaiting = 0

    init(capacity: Int, batchBytes: Int) {
        self.capacity = capacity
        self.batchBytes = batchBytes
    }

    // MARK: - Logging threads

    enum AppendOutcome: Equatable {
        case queued
        /// Queued; the writer must be woken.
        case queuedWakeWriter
        /// The buffer is full (or the writer has stopped): the line is counted as dropped.
        case dropped
    }

    /// Appends one line, which `encode` writes at the end of the buffer (with the shared
    /// timestamp renderer).
    mutating func append(_ encode: (inout [UInt8], inout LogTimestamp) -> Void) -> AppendOutcome {
        guard pending.count < capacity, writer != .stopping, writer != .stopped else {
            dropped += 1
            return .dropped
        }
        encode(&pending, &timestamp)
        pendingLines += 1
        accepted += 1
        if writer == .asleep {
            writer = .awake
            return .queuedWakeWriter
        }
        if pending.count >= batchBytes && !batchSignalled {
            batchSignalled = true
            return .queuedWakeWriter
        }
        return .queued
    }

    /// A flush starts: until ``flushEnded()``, the writer does not wait for more lines.
    /// Returns the line count the flush waits for (``isWritten(through:)``).
    mutating func flushStarted() -> Int {
        flushesWaiting += 1
        if writer == .asleep { writer = .awake }
        return accepted
    }

    mutating func flushEnded() { flushesWaiting -= 1 }

    func isWritten(through line: Int) -> Bool { written >= line || writer == .stopped }

    /// No more lines are accepted; the writer writes what is queued and ends.
    mutating func stop() {
        if writer != .stopped { writer = .stopping }
    }

    // MARK: - Writer thread

    enum WriterAction: Equatable {
        /// Nothing to write: wait until woken.
        case sleep
        /// Wait up to the batch delay (or until woken) for more lines.
        case gather
        /// Write the batch now in the buffer passed to ``takeBatch(swapping:)``.
        case write
        /// Everything is written: end the thread.
        case exit
    }

    /// What the writer does next; call again after each wait.
    mutating func nextWriterAction() -> WriterAction {
        switch writer {
        case .stopped: return .exit
        case .stopping:
            if pending.isEmpty {
                writer = .stopped
                return .exit
            }
            return .write
        case .asleep, .awake, .gathering:
            if pending.isEmpty {
                writer = .asleep
                return .sleep
            }
            if writer == .gathering || flushesWaiting > 0 || pending.count >= batchBytes { return .write }
            writer = .gathering
            return .gather
        }
    }

    /// Hands every queued line to the writer: `spare` (empty, with its capacity kept) becomes the
    /// new buffer. Returns the number of lines taken.
    mutating func takeBatch(swapping spare: inout [UInt8]) -> Int {
        swap(&pending, &spare)
        let lines = pendingLines
        pendingLines = 0
        batchSignalled = false
        if writer == .gathering { writer = .awake }
        return lines
    }

    /// The writer finished a batch of `lines`; `lost` when the write failed.
    mutating func batchWritten(lines: Int, lost: Bool) {
        written += lines
        if lost { dropped += lines }
    }
}
