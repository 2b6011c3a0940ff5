import Foundation

/// `callout-proxy serve` (or any command) run as a separate process, its output collected, stopped
/// with SIGTERM (then SIGKILL) when the test ends.
final class ServedProcess: @unchecked Sendable {
    let process = Process()
    private let lock = NSLock()
    private var collected = Data()

    var output: String { lock.withLock { String(decoding: collected, as: UTF8.self) } }

    static func start(_ command: [String]) throws -> ServedProcess {
        let served = ServedProcess()
        served.process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        served.process.arguments = command
        served.process.standardInput = FileHandle.nullDevice
        let pipe = Pipe()
        served.process.standardOutput = pipe
        served.process.standardError = pipe
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            served.lock.withLock { served.collected.append(data) }
        }
        try served.process.run()
        return served
    }

    /// The port from the start-up log line (`"listen":"http://127.0.0.1:PORT"`), waited for up to 30 s.
    func waitForListenPort(_ key: String = "listen") async throws -> Int {
        let pattern = try NSRegularExpression(pattern: key + #""?[=:] ?"?http://127\.0\.0\.1:([0-9]+)"#)
        for _ in 0..<300 {
            let text = output
            if let match = pattern.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
                let range = Range(match.range(at: 1), in: text), let port = Int(text[range])
            {
                return port
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "no listen line in: \(output)"])
    }

    /// Resident memory of the process in bytes (Linux `/proc`), nil where unknown.
    func residentBytes() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return nil }
        return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }.map { $0 * 1024 }
    }

    /// The served command's own process id (below `env`, and `setpriv`, which exec it in place).
    func childPID() -> Int32 { process.processIdentifier }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        for _ in 0..<50 where process.isRunning { usleep(100_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}
