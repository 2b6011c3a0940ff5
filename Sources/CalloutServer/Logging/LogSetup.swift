import Foundation
import Logging

/// How log lines are written.
public enum LogFormat: String, Sendable, CaseIterable {
    case json
    case human

    /// JSON unless standard error is a terminal.
    public static var automatic: LogFormat { isatty(STDERR_FILENO) != 0 ? .human : .json }
}

public enum LogSetup {
    /// The writer behind the process log on standard error, made on first use.
    public static let standardError: LogLineWriter = {
        // Standard error always opens; nothing is thrown for it.
        let writer = try! LogLineWriter(.standardError)
        atexit { LogSetup.standardError.flush(timeout: 2) }
        return writer
    }()

    /// Installs the process-wide log handler once: every line goes through ``standardError``.
    public static func bootstrap(level: Logger.Level, format: LogFormat) {
        let sink = standardError
        LoggingSystem.bootstrap { label in
            LineLogHandler(label: label, level: level, format: format, sink: sink)
        }
    }

    /// Writes every process log line logged so far (before exiting).
    public static func flush() { standardError.flush() }
}
