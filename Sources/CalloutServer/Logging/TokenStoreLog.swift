import CalloutTokens
import Logging

/// The token store's events in the process log: an outage and its end once each, every
/// rejected row (it may be an attack on the store), store errors at debug (they are counted).
enum TokenStoreLog {
    static func record(_ event: SharedTokens.Event, logger: Logger) {
        switch event {
        case .unavailable(let reason):
            logger.warning(
                "token store unavailable: callouts fetch tokens locally until it is back",
                metadata: ["error": "\(reason)"])
        case .available(let seconds):
            logger.notice(
                "token store available again: tokens are shared", metadata: ["unavailable_seconds": "\(Int(seconds))"])
        case .rejectedRow(let problem):
            logger.error("token store row not served: \(problem.description)")
        case .error(let operation, let reason):
            logger.debug("token store operation failed", metadata: ["operation": "\(operation)", "error": "\(reason)"])
        case .leaseWaitTimedOut:
            logger.notice("token store: no token from the replica holding the lease in time; fetched here")
        case .hit, .miss, .leaseWait, .invalidated:
            break
        }
    }
}
