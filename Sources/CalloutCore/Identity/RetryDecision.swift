/// Whether an upstream answer should refresh the token and replay the request.
public enum RetryDecision: Sendable, Equatable {
    /// Hand the response to the caller.
    case deliver
    /// Invalidate the token that failed, fetch a fresh one and replay the request once.
    case refreshAndReplay
    /// A refresh status, but the body was streamed past the replay buffer: deliver and record it.
    case deliverNotReplayable

    /// - Parameters:
    ///   - status: the upstream status.
    ///   - attempt: 1 for the first try; the second response is always delivered.
    ///   - injectedToken: whether the request carried a token the proxy injected.
    ///   - bodyReplayable: whether the whole request body is buffered (or there was none).
    public static func decide(
        status: Int, attempt: Int, injectedToken: Bool, bodyReplayable: Bool, credential: ExternalCredentialConfig
    ) -> RetryDecision {
        guard attempt == 1, injectedToken, credential.isRefreshStatus(status) else { return .deliver }
        return bodyReplayable ? .refreshAndReplay : .deliverNotReplayable
    }
}
