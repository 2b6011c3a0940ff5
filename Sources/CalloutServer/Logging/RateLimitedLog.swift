import CalloutCore
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// A log line for an event that can repeat at any rate (a fault per connection, say): the first
/// of each kind is written, then at most one a minute, saying how many were left out between.
final class RateLimitedLog: Sendable {
    private let logger: Logger
    private let limiter: NIOLockedValueBox<LogRateLimiter<String>>

    init(logger: Logger, intervalSeconds: Int = 60) {
        self.logger = logger
        self.limiter = NIOLockedValueBox(LogRateLimiter(intervalSeconds: intervalSeconds))
    }

    func log(
        _ level: Logger.Level, kind: String, _ message: @autoclosure () -> Logger.Message,
        metadata: @autoclosure () -> Logger.Metadata
    ) {
        let now = NIODeadline.now().uptimeNanoseconds
        guard let suppressed = limiter.withLockedValue({ $0.admit(kind, now: now) }) else { return }
        var fields = metadata()
        if suppressed > 0 { fields["suppressed"] = "\(suppressed)" }
        logger.log(level: level, message(), metadata: fields)
    }
}
