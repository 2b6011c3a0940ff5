import CalloutCore
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// A connection closed at accept because `max_connections` was reached: counted by the limiter,
/// not a setup failure.
struct ConnectionRefusedAtLimit: Error {}

/// Sits last on the listener's pipeline, where the bootstrap reports a client connection whose
/// setup failed (a socket option refused, a handler that could not be added) after closing it.
/// Such a failure would otherwise be silent: the caller sees a reset and nothing is logged. Each
/// failure is counted; the log line is rate-limited per kind of error.
final class AcceptFailureHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = Any

    private let log: RateLimitedLog
    private let observer: any CalloutObserver

    init(logger: Logger, observer: any CalloutObserver) {
        self.log = RateLimitedLog(logger: logger)
        self.observer = observer
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is ConnectionRefusedAtLimit { return }
        let kind = Self.kind(of: error)
        observer.connectionSetupFailed(kind: kind)
        log.log(
            .error, kind: kind, "client connection closed at accept: its setup failed",
            metadata: ["error": "\(error)", "kind": "\(kind)"])
    }

    /// A fixed word for the metric label and the rate limit: the error's type and, for a
    /// system call, its errno.
    static func kind(of error: any Error) -> String {
        if let io = error as? IOError { return "io_errno_\(io.errnoCode)" }
        return String(describing: type(of: error))
    }
}
