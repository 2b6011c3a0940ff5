import CalloutCore
import Foundation
import Logging

/// Follows the configuration file and every file it names on disk, and reloads through
/// ``ConfigReloader`` (validated, atomic, as on SIGHUP) when they change: polls the status of
/// each path, symlinks followed, every ``interval``. ``FileWatchStateMachine`` decides; this
/// type only reads file statuses and performs the reloads.
public struct ConfigWatcher: Sendable {
    public let configFile: String
    public let interval: Duration
    private let config: @Sendable () -> ProxyConfig
    private let reload: @Sendable (String) -> ReloadOutcome
    private let logger: Logger

    /// - Parameters:
    ///   - configFile: the path `serve` was given (a symlink is followed on every poll).
    ///   - config: the configuration now serving (its key and CA paths are watched).
    ///   - reload: performs a reload; its argument names the trigger.
    public init(
        configFile: String, interval: Duration = .seconds(1), config: @escaping @Sendable () -> ProxyConfig,
        reload: @escaping @Sendable (String) -> ReloadOutcome, logger: Logger
    ) {
        self.configFile = configFile
        self.interval = interval
        self.config = config
        self.reload = reload
        self.logger = logger
    }

    /// Polls until the task is cancelled.
    public func run() async {
        var paths = WatchedFiles.paths(configFile: configFile, config: config())
        var machine = FileWatchStateMachine(baseline: Self.snapshot(paths))
        logger.debug("watching configuration files", metadata: ["files": "\(paths.joined(separator: ","))"])
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            guard case .reload(let changed) = machine.observed(Self.snapshot(paths)) else { continue }
            logger.notice("configuration files changed", metadata: ["files": "\(changed.joined(separator: ","))"])
            _ = reload("file-change")
            let now = WatchedFiles.paths(configFile: configFile, config: config())
            if now != paths {
                paths = now
                machine.watch(paths: paths, fresh: Self.snapshot(paths))
            }
        }
    }

    /// The status of each path, symlinks followed.
    public static func snapshot(_ paths: [String]) -> FileSnapshot {
        var snapshot: FileSnapshot = [:]
        for path in paths { snapshot[path] = status(path) }
        return snapshot
    }

    static func status(_ path: String) -> FileStatus {
        var info = stat()
        guard stat(path, &info) == 0, let resolved = realpath(path, nil) else { return .missing }
        defer { free(resolved) }
        return .present(
            resolvedPath: String(cString: resolved), device: UInt64(info.st_dev), inode: UInt64(info.st_ino),
            size: Int64(info.st_size),
            modifiedNanoseconds: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
    }
}
