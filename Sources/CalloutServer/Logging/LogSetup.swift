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
    /// Installs the process-wide log handler once.
    public static func bootstrap(level: Logger.Level, format: LogFormat) {
        LoggingSystem.bootstrap { label in
            switch format {
            case .json:
                return JSONLogHandler(label: label, level: level)
            case .human:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}
