/// Whether an upstream answer should refresh the token and replay the request.
public enum RetryDecision: Sendable, Equatable {
    /// Hand the response to the caller.
    case deliver
    /// Invalidate the token that failed, fetch a fresh one and replay the request once.
    case refreshAndReplay
    /// A refresh status, but the body was streamed past the replay buffer: deliver and record it.
    case deliverNotReplayable
    /// A refresh status on a token that was itself fetched, less than
    /// `min_token_refresh_interval_seconds` ago, because an upstream refused its predecessor:
    /// deliver without another fetch and count it (a resource that is simply forbidden must not
    /// turn every callout into an identity provider call).
    case deliverRefreshGuarded

    /// - Parameters:
    ///   - status: the upstream status.
    ///   - attempt: 1 for the first try; the second response is always delivered.
    ///   - injectedToken: whether the request carried a token the proxy injected.
    ///   - bodyReplayable: whether the whole request body is buffered (or there was none).
    ///   - refreshGuarded: whether the token is within the refresh storm guard's interval.
    public static func decide(
        status: Int, attempt: Int, injectedToken: Bool, bodyReplayable: Bool, credential: ExternalCredentialConfig,
        refreshGuarded: Bool = false
    ) -> RetryDecision {
        guard attempt == 1, injectedToken, credential.isRefreshStatus(status) else { return .deliver }
        if refreshGuarded { return .deliverRefreshGuarded }
        return bodyReplayable ? .refreshAndReplay : .deliverNotReplayable
    }
}
