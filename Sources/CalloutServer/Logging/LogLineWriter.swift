import Foundation

/// Where finished log lines go, one call per line.
public protocol LogSink: Sendable {
    /// `encode` appends one whole line, newline included, to the buffer; the timestamp renderer
    /// is shared so a second is rendered once.
    func append(_ encode: (inout [UInt8], inout LogTimestamp) -> Void)
}

/// Writes log lines from one thread of its own, off the event loops: callers append into a
/// bounded in-memory buffer (``LogQueue``) and return at once; the thread writes whatever has
/// gathered in one `write(2)`, at the latest ``batchDelay`` after a line arrives. When the
/// buffer is full, lines are dropped and counted (``droppedLines``), never waited for.
public final class LogLineWriter: LogSink, @unchecked Sendable {
    public enum Destination: Sendable, Equatable {
        case standardError
        /// Appended to; ``reopen()`` opens the path again (after the file was moved away).
        case file(String)
    }

    /// Bytes waiting to be written before lines are dropped.
    public static let defaultCapacity = 4 << 20
    /// The longest a line waits for company before it is written.
    public static let batchDelay = 0.1

    public let destination: Destination
    private let condition = NSCondition()
    /// Guarded by `condition`.
    private var queue: LogQueue
    /// Guarded by `condition`; `descriptor` is written to only by the writer thread.
    private var descriptor: Int32
    /// Descriptors replaced by ``reopen()``, closed by the writer before its next write.
    private var retired: [Int32] = []

    /// Opens the destination and starts the writer thread.
    public init(_ destination: Destination, capacity: Int = LogLineWriter.defaultCapacity) throws(LogFileError) {
        self.destination = destination
        self.queue = LogQueue(capacity: capacity, batchBytes: min(64 << 10, capacity))
        switch destination {
        case .standardError: descriptor = STDERR_FILENO
        case .file(let path): descriptor = try Self.open(path)
        }
        let thread = Thread { [self] in self.run() }
        thread.name = "callout-proxy.log-writer"
        thread.start()
    }

    // MARK: - Logging threads

    public func append(_ encode: (inout [UInt8], inout LogTimestamp) -> Void) {
        condition.lock()
        let outcome = queue.append(encode)
        condition.unlock()
        if outcome == .queuedWakeWriter { condition.broadcast() }
    }

    /// Lines refused because the buffer was full, or lost to a failed write, since the start.
    public var droppedLines: Int {
        condition.lock()
        defer { condition.unlock() }
        return queue.dropped
    }

    /// Returns once every line appended before the call is written (or `timeout` passes, or
    /// the writer has stopped).
    public func flush(timeout: Double = 5) {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        let target = queue.flushStarted()
        condition.broadcast()
        while !queue.isWritten(through: target) {
            if !condition.wait(until: deadline) { break }
        }
        queue.flushEnded()
        condition.unlock()
    }

    /// Opens the file's path again (the logrotate convention: the old file was renamed; new
    /// lines go to a new file at the path). Lines queued before the call may land in either.
    /// Standard error is left as it is.
    public func reopen() throws(LogFileError) {
        guard case .file(let path) = destination else { return }
        let fresh = try Self.open(path)
        condition.lock()
        retired.append(descriptor)
        descriptor = fresh
        condition.unlock()
    }

    /// Writes what is queued, stops the thread and closes a file. Lines appended later are dropped.
    public func close(timeout: Double = 5) {
        condition.lock()
        queue.stop()
        condition.unlock()
        condition.broadcast()
        flush(timeout: timeout)
    }

    // MARK: - Writer thread

    private func run() {
        var batch: [UInt8] = []
        batch.reserveCapacity(64 << 10)
        condition.lock()
        while true {
            switch queue.nextWriterAction() {
            case .sleep:
                condition.wait()
            case .gather:
                _ = condition.wait(until: Date(timeIntervalSinceNow: Self.batchDelay))
            case .write:
                let lines = queue.takeBatch(swapping: &batch)
                let fd = descriptor
                let toClose = retired
                retired = []
                condition.unlock()
                for old in toClose { closeDescriptor(old) }
                let ok = Self.writeAll(fd, batch)
                batch.removeAll(keepingCapacity: true)
                condition.lock()
                queue.batchWritten(lines: lines, lost: !ok)
                condition.broadcast()
            case .exit:
                let fd = descriptor
                let toClose = retired
                retired = []
                condition.broadcast()
                condition.unlock()
                for old in toClose { closeDescriptor(old) }
                if case .file = destination { closeDescriptor(fd) }
                return
            }
        }
    }

    /// Writes all of `bytes`; waits for a descriptor that is not ready (a non-blocking pipe).
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n > 0 {
                    offset += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                    var ready = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    if poll(&ready, 1, 1000) <= 0 { return false }
                } else {
                    return false
                }
            }
            return true
        }
    }

    static func open(_ path: String) throws(LogFileError) -> Int32 {
        let fd = openForAppending(path)
        guard fd >= 0 else { throw LogFileError(path: path, reason: String(cString: strerror(errno))) }
        return fd
    }
}

private func openForAppending(_ path: String) -> Int32 {
    open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
}

private func closeDescriptor(_ fd: Int32) { _ = close(fd) }

/// A log file that cannot be opened.
public struct LogFileError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "cannot open the access log '\(path)': \(reason)" }
}
