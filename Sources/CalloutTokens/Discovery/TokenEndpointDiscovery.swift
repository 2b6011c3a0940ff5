import Logging

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Token endpoints discovered from issuer metadata (`identity_provider_issuer`): fetched at
/// start and on reload, cached, fetched again after a failure (1 s, 2 s, 4 s … 60 s apart, also
/// without traffic). A token fetch waits for the first discovery; afterwards an endpoint found
/// before keeps serving while a new fetch runs or fails.
public final class TokenEndpointDiscovery: Sendable {
    public typealias Fetch = @Sendable (_ issuer: String) async throws -> String

    private struct State {
        var machine = DiscoveryStateMachine()
        var running: [String: Task<String, any Error>] = [:]
        var retries: [String: Task<Void, Never>] = [:]
        var closed = false
    }

    private let fetch: Fetch
    private let logger: Logger
    private let now: @Sendable () -> Double
    private let state = LockedState(State())

    public init(
        fetch: @escaping Fetch, logger: Logger,
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) {
        self.fetch = fetch
        self.logger = logger
        self.now = now
    }

    /// Starts a discovery for every issuer (at start and after a reload) and forgets the others.
    public func refresh(issuers: [String]) {
        let wanted = Set(issuers)
        let started: [String] = state.withLock { s in
            guard !s.closed else { return [] }
            s.machine.keep(only: wanted)
            for (issuer, task) in s.retries where !wanted.contains(issuer) {
                task.cancel()
                s.retries[issuer] = nil
            }
            return wanted.sorted().filter { s.machine.refresh($0) }
        }
        for issuer in started { start(issuer) }
    }

    /// The token endpoint of `issuer`; waits for a discovery under way. Throws
    /// ``TokenEndpointDiscoveryError`` (or `CancellationError`).
    public func tokenEndpoint(issuer: String) async throws -> String {
        let demand = state.withLock { $0.machine.demand(issuer, now: now()) }
        switch demand {
        case .use(let endpoint): return endpoint
        case .fail(let error): throw error
        case .start: return try await start(issuer).value
        case .wait:
            guard let task = state.withLock({ $0.running[issuer] }) else {
                // The fetch was decided on but its task is not registered yet.
                try await Task.sleep(for: .milliseconds(1))
                return try await tokenEndpoint(issuer: issuer)
            }
            return try await task.value
        }
    }

    /// Issuers whose last discovery failed, with why (`/readyz`).
    public var failures: [String: TokenEndpointDiscoveryError] { state.withLock { $0.machine.failures } }

    /// Stops scheduled retries (the service is closing).
    public func shutdown() {
        let (retries, running) = state.withLock { s in
            s.closed = true
            defer {
                s.retries = [:]
                s.running = [:]
            }
            return (Array(s.retries.values), Array(s.running.values))
        }
        for task in retries { task.cancel() }
        for task in running { task.cancel() }
    }

    @discardableResult
    private func start(_ issuer: String) -> Task<String, any Error> {
        let task = Task<String, any Error> { [self] in
            do {
                let endpoint = try await fetch(issuer)
                state.withLock { s in
                    s.machine.succeeded(issuer, endpoint: endpoint)
                    s.running[issuer] = nil
                }
                return endpoint
            } catch {
                let failure =
                    error as? TokenEndpointDiscoveryError
                    ?? TokenEndpointDiscoveryError(issuer: issuer, reasons: ["\(type(of: error))"])
                let wait = state.withLock { s in
                    s.running[issuer] = nil
                    return s.machine.failed(issuer, failure, now: now())
                }
                logger.warning(
                    "token endpoint discovery failed",
                    metadata: [
                        "issuer": .string(issuer), "error": .string(failure.description),
                        "retry_in_seconds": "\(Int(wait ?? 0))",
                    ])
                if let wait { scheduleRetry(issuer, after: wait) }
                var thrown = failure
                thrown.retryAfterSeconds = wait
                throw thrown
            }
        }
        state.withLock { s in
            if case .fetching = s.machine.entries[issuer] { s.running[issuer] = task }
        }
        return task
    }

    private func scheduleRetry(_ issuer: String, after seconds: Double) {
        let retry = Task { [self] in
            try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
            guard !Task.isCancelled else { return }
            let go = state.withLock { s in
                s.retries[issuer] = nil
                return !s.closed && s.machine.entries[issuer] != nil && s.machine.refresh(issuer)
            }
            if go { start(issuer) }
        }
        state.withLock { s in
            if s.closed {
                retry.cancel()
            } else {
                s.retries[issuer]?.cancel()
                s.retries[issuer] = retry
            }
        }
    }
}
