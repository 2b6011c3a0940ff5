import CalloutCore

/// Feeds data-plane events into ``ProxyMetrics``, mapping names to configured ones.
struct MetricsObserver: CalloutObserver {
    let metrics: ProxyMetrics
    let configuration: RuntimeConfiguration

    /// The configured spelling of `alias`, or `unknown` (by the configuration's name index).
    private func label(_ alias: String?) -> String {
        ProxyMetrics.namedCredentialLabel(alias, in: configuration.current.config)
    }

    func calloutFinished(_ record: CalloutLogRecord, duration: Duration) {
        let label = label(record.alias)
        metrics.calloutFinished(
            namedCredential: label, status: record.status, retried: record.retried, duration: duration)
    }

    func upstreamResponded(namedCredential: String, duration: Duration) {
        let label = label(namedCredential)
        metrics.upstreamResponded(namedCredential: label, duration: duration)
    }

    func refreshNotReplayed(namedCredential: String) {
        let label = label(namedCredential)
        metrics.refreshNotReplayed(namedCredential: label)
    }

    func refreshGuarded(namedCredential: String) {
        let label = label(namedCredential)
        metrics.refreshGuarded(namedCredential: label)
    }

    func connectionRejected() { metrics.connectionRejected() }

    func connectionSetupFailed(kind: String) { metrics.connectionSetupFailed(kind: kind) }

    func upstreamDesync(namedCredential: String, reason: String) {
        let label = label(namedCredential)
        metrics.upstreamDesync(namedCredential: label, reason: reason)
    }
}

/// Sends every event to each observer in turn (the access log, then metrics).
struct CompositeObserver: CalloutObserver {
    let observers: [any CalloutObserver]

    func calloutFinished(_ record: CalloutLogRecord, duration: Duration) {
        for o in observers { o.calloutFinished(record, duration: duration) }
    }

    func upstreamResponded(namedCredential: String, duration: Duration) {
        for o in observers { o.upstreamResponded(namedCredential: namedCredential, duration: duration) }
    }

    func refreshNotReplayed(namedCredential: String) {
        for o in observers { o.refreshNotReplayed(namedCredential: namedCredential) }
    }

    func refreshGuarded(namedCredential: String) {
        for o in observers { o.refreshGuarded(namedCredential: namedCredential) }
    }

    func connectionRejected() {
        for o in observers { o.connectionRejected() }
    }

    func connectionSetupFailed(kind: String) {
        for o in observers { o.connectionSetupFailed(kind: kind) }
    }

    func upstreamDesync(namedCredential: String, reason: String) {
        for o in observers { o.upstreamDesync(namedCredential: namedCredential, reason: reason) }
    }
}
