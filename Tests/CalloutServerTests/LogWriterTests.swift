import Foundation
import Testing

@testable import CalloutServer

/// The queue between logging threads and the writer thread (pure), then the writer on real files.
@Suite struct LogQueueTests {
    func line(_ text: String) -> (inout [UInt8], inout LogTimestamp) -> Void {
        { buffer, _ in buffer.append(contentsOf: (text + "\n").utf8) }
    }

    @Test func theFirstLineWakesASleepingWriterAndLaterOnesDoNot() {
        var q = LogQueue(capacity: 1 << 20, batchBytes: 1 << 10)
        #expect(q.nextWriterAction() == .sleep)
        #expect(q.append(line("one")) == .queuedWakeWriter)
        #expect(q.append(line("two")) == .queued)
        // Woken with a small batch: it waits once for company, then writes.
        #expect(q.nextWriterAction() == .gather)
        #expect(q.append(line("three")) == .queued)
        #expect(q.nextWriterAction() == .write)
        var batch: [UInt8] = []
        #expect(q.takeBatch(swapping: &batch) == 3)
        #expect(String(decoding: batch, as: UTF8.self) == "one\ntwo\nthree\n")
        #expect(q.pending.isEmpty)
        q.batchWritten(lines: 3, lost: false)
        #expect(q.written == 3 && q.dropped == 0)
        #expect(q.nextWriterAction() == .sleep)
        #expect(q.append(line("four")) == .queuedWakeWriter)
    }

    @Test func aFullBatchWakesTheWriterOnceAndIsWrittenWithoutWaiting() {
        var q = LogQueue(capacity: 1 << 20, batchBytes: 10)
        _ = q.nextWriterAction()
        #expect(q.append(line("aaaa")) == .queuedWakeWriter)
        #expect(q.nextWriterAction() == .gather)
        #expect(q.append(line("bbbb")) == .queuedWakeWriter)
        #expect(q.append(line("cccc")) == .queued)
        #expect(q.nextWriterAction() == .write)
        var batch: [UInt8] = []
        #expect(q.takeBatch(swapping: &batch) == 3)
        // A new full batch signals again.
        _ = q.append(line("dddd"))
        #expect(q.append(line("eeee")) == .queuedWakeWriter)
    }

    @Test func aFullBufferDropsAndCountsLinesUntilTheWriterTakesThem() {
        var q = LogQueue(capacity: 8, batchBytes: 8)
        #expect(q.append(line("1234567")) != .dropped)
        #expect(q.append(line("x")) == .dropped)
        #expect(q.append(line("y")) == .dropped)
        #expect(q.dropped == 2 && q.accepted == 1)
        var batch: [UInt8] = []
        #expect(q.takeBatch(swapping: &batch) == 1)
        #expect(q.append(line("z")) != .dropped)
        #expect(q.dropped == 2 && q.accepted == 2)
    }

    @Test func aFailedWriteCountsItsLinesAsDropped() {
        var q = LogQueue(capacity: 1 << 20, batchBytes: 1 << 10)
        _ = q.append(line("a"))
        _ = q.append(line("b"))
        var batch: [UInt8] = []
        let lines = q.takeBatch(swapping: &batch)
        q.batchWritten(lines: lines, lost: true)
        #expect(q.dropped == 2 && q.written == 2)
    }

    @Test func aFlushWritesAtOnceAndWaitsForTheLinesBeforeIt() {
        var q = LogQueue(capacity: 1 << 20, batchBytes: 1 << 10)
        _ = q.nextWriterAction()
        _ = q.append(line("a"))
        _ = q.append(line("b"))
        let target = q.flushStarted()
        #expect(target == 2)
        #expect(!q.isWritten(through: target))
        #expect(q.nextWriterAction() == .write)
        var batch: [UInt8] = []
        q.batchWritten(lines: q.takeBatch(swapping: &batch), lost: false)
        #expect(q.isWritten(through: target))
        q.flushEnded()
        _ = q.append(line("c"))
        #expect(q.nextWriterAction() == .gather)
    }

    @Test func stoppingWritesWhatIsQueuedThenExitsAndRefusesNewLines() {
        var q = LogQueue(capacity: 1 << 20, batchBytes: 1 << 10)
        _ = q.append(line("a"))
        q.stop()
        #expect(q.append(line("late")) == .dropped)
        #expect(q.nextWriterAction() == .write)
        var batch: [UInt8] = []
        q.batchWritten(lines: q.takeBatch(swapping: &batch), lost: false)
        #expect(String(decoding: batch, as: UTF8.self) == "a\n")
        #expect(q.nextWriterAction() == .exit)
        #expect(q.writer == .stopped)
        #expect(q.isWritten(through: 100))
        #expect(q.nextWriterAction() == .exit)
    }
}

@Suite struct LogLineWriterTests {
    func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("logs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    func write(_ writer: LogLineWriter, _ text: String) {
        writer.append { buffer, _ in buffer.append(contentsOf: (text + "\n").utf8) }
    }

    func lines(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    @Test func linesFromManyThreadsAreAllWrittenWholeByClose() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("access.log").path
        let writer = try LogLineWriter(.file(path))
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for i in 0..<2_000 { write(writer, "thread \(thread) line \(i) " + String(repeating: "x", count: i % 97)) }
        }
        writer.close()
        let written = try lines(path)
        #expect(written.count == 16_000)
        #expect(Set(written.map { $0.split(separator: " ").prefix(4).joined(separator: " ") }).count == 16_000)
        #expect(writer.droppedLines == 0)
        write(writer, "after close")
        #expect(writer.droppedLines == 1)
        #expect(try lines(path).count == 16_000)
    }

    @Test func flushMakesEveryEarlierLineVisible() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("access.log").path
        let writer = try LogLineWriter(.file(path))
        defer { writer.close() }
        for i in 0..<10 { write(writer, "line \(i)") }
        writer.flush()
        #expect(try lines(path) == (0..<10).map { "line \($0)" })
    }

    @Test func reopenStartsANewFileAtThePathAfterTheOldOneWasMoved() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("access.log").path
        let rotated = dir.appendingPathComponent("access.log.1").path
        let writer = try LogLineWriter(.file(path))
        write(writer, "before")
        writer.flush()
        try FileManager.default.moveItem(atPath: path, toPath: rotated)
        write(writer, "still the old file")
        writer.flush()
        try writer.reopen()
        write(writer, "after")
        writer.close()
        #expect(try lines(rotated) == ["before", "still the old file"])
        #expect(try lines(path) == ["after"])
    }

    @Test func anExistingFileIsAppendedTo() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("access.log").path
        try "earlier\n".write(toFile: path, atomically: true, encoding: .utf8)
        let writer = try LogLineWriter(.file(path))
        write(writer, "later")
        writer.close()
        #expect(try lines(path) == ["earlier", "later"])
    }

    @Test func aFileThatCannotBeOpenedIsAnErrorNamingIt() throws {
        let path = "/nonexistent-\(UUID().uuidString)/access.log"
        #expect(throws: LogFileError.self) { try LogLineWriter(.file(path)) }
        do {
            _ = try LogLineWriter(.file(path))
        } catch {
            #expect(error.description == "cannot open the access log '\(path)': No such file or directory")
        }
    }

    @Test func linesThatCannotBeWrittenAreCountedAsDropped() throws {
        // /dev/full refuses every write with ENOSPC.
        let writer = try LogLineWriter(.file("/dev/full"))
        for i in 0..<5 { write(writer, "line \(i)") }
        writer.close()
        #expect(writer.droppedLines == 5)
    }
}
