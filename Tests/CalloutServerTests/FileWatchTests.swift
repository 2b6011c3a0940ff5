import CalloutCore
import Foundation
import Testing

@testable import CalloutServer

/// What `serve` watches on disk and when a change is reloaded: the pure decisions, and file
/// statuses read through symlinks.
@Suite struct FileWatchTests {
    static let a = FileStatus.present(
        resolvedPath: "/m/..2026_x/proxy.conf", device: 1, inode: 10, size: 100, modifiedNanoseconds: 5)
    static let b = FileStatus.present(
        resolvedPath: "/m/..2026_y/proxy.conf", device: 1, inode: 11, size: 100, modifiedNanoseconds: 5)
    static let c = FileStatus.present(
        resolvedPath: "/m/..2026_y/proxy.conf", device: 1, inode: 11, size: 120, modifiedNanoseconds: 6)

    @Test func theConfigurationFileAndEveryFileItNamesAreWatchedOnce() throws {
        let config = try ConfigLoader.load(
            text: """
                [proxy]
                ca_file = ["/etc/ca/one.pem", "/etc/ca/two.pem"]

                [[certificate]]
                name = "A"
                private_key_file = "/keys/a.key"
                certificate_file = "/keys/a.crt"

                [[certificate]]
                name = "B"
                private_key_file = "/keys/a.key"
                """)
        #expect(
            WatchedFiles.paths(configFile: "/etc/proxy.conf", config: config) == [
                "/etc/ca/one.pem", "/etc/ca/two.pem", "/etc/proxy.conf", "/keys/a.crt", "/keys/a.key",
            ])
    }

    @Test func changedNamesPathsThatDifferAppearOrDisappear() {
        let old: FileSnapshot = ["/p": Self.a, "/k": .missing, "/gone": Self.a]
        let new: FileSnapshot = ["/p": Self.b, "/k": .missing, "/new": Self.a]
        #expect(WatchedFiles.changed(from: old, to: new) == ["/gone", "/new", "/p"])
        #expect(WatchedFiles.changed(from: old, to: old).isEmpty)
    }

    @Test func nothingHappensWhileTheFilesStayTheSame() {
        var machine = FileWatchStateMachine(baseline: ["/p": Self.a])
        for _ in 0..<10 { #expect(machine.observed(["/p": Self.a]) == .none) }
        #expect(machine.state == .watching(baseline: ["/p": Self.a]))
    }

    @Test func aChangeIsReloadedOnceTwoPollsAgree() {
        var machine = FileWatchStateMachine(baseline: ["/p": Self.a])
        #expect(machine.observed(["/p": Self.b]) == .none)
        #expect(machine.state == .settling(baseline: ["/p": Self.a], candidate: ["/p": Self.b], polls: 1))
        #expect(machine.observed(["/p": Self.b]) == .reload(changed: ["/p"]))
        #expect(machine.state == .watching(baseline: ["/p": Self.b]))
        // Applied once: the same files again are no change.
        #expect(machine.observed(["/p": Self.b]) == .none)
    }

    @Test func aFileStillBeingWrittenWaitsUntilItSettles() {
        var machine = FileWatchStateMachine(baseline: ["/p": Self.a])
        #expect(machine.observed(["/p": Self.b]) == .none)
        #expect(machine.observed(["/p": Self.c]) == .none)
        #expect(machine.observed(["/p": Self.c]) == .reload(changed: ["/p"]))
        #expect(machine.state == .watching(baseline: ["/p": Self.c]))
    }

    @Test func aChangeUndoneBeforeItSettlesIsNoChange() {
        var machine = FileWatchStateMachine(baseline: ["/p": Self.a])
        #expect(machine.observed(["/p": Self.b]) == .none)
        #expect(machine.observed(["/p": Self.a]) == .none)
        #expect(machine.state == .watching(baseline: ["/p": Self.a]))
    }

    @Test func aFileThatKeepsChangingIsReloadedAfterTheSettlingLimit() {
        var machine = FileWatchStateMachine(baseline: ["/p": Self.a])
        var actions: [FileWatchStateMachine.Action] = []
        for size in 1...FileWatchStateMachine.maxSettlingPolls {
            let moving = FileStatus.present(
                resolvedPath: "/p", device: 1, inode: 10, size: Int64(size), modifiedNanoseconds: Int64(size))
            actions.append(machine.observed(["/p": moving]))
        }
        #expect(actions.dropLast().allSatisfy { $0 == .none })
        #expect(actions.last == .reload(changed: ["/p"]))
    }

    @Test func aFileThatDisappearsIsAChange() {
        var machine = FileWatchStateMachine(baseline: ["/p": Self.a, "/k": Self.b])
        #expect(machine.observed(["/p": Self.a, "/k": .missing]) == .none)
        #expect(machine.observed(["/p": Self.a, "/k": .missing]) == .reload(changed: ["/k"]))
    }

    @Test func newPathsAfterAReloadStartFromTheirFreshStatusAndKnownOnesKeepTheirBaseline() {
        var machine = FileWatchStateMachine(baseline: ["/p": Self.a, "/old.key": Self.a])
        // /p changed during the reload (fresh says c): still compared from the baseline a.
        machine.watch(paths: ["/p", "/new.key"], fresh: ["/p": Self.c, "/new.key": Self.b])
        #expect(machine.state == .watching(baseline: ["/p": Self.a, "/new.key": Self.b]))
        #expect(machine.observed(["/p": Self.c, "/new.key": Self.b]) == .none)
        #expect(machine.observed(["/p": Self.c, "/new.key": Self.b]) == .reload(changed: ["/p"]))
    }

    /// A Kubernetes volume update: the file's path stays, the `..data` symlink moves to a new folder.
    @Test func aDataSymlinkSwapChangesTheStatusOfEveryPathThroughIt() throws {
        let mount = FileManager.default.temporaryDirectory.appendingPathComponent("watch-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: mount) }
        var volume = try KubernetesVolume(at: mount, files: ["proxy.conf": "one", "signing.key": "key"])
        let paths = [mount.appendingPathComponent("proxy.conf").path, mount.appendingPathComponent("signing.key").path]
        let before = ConfigWatcher.snapshot(paths)
        #expect(before.values.allSatisfy { $0 != .missing })
        #expect(ConfigWatcher.snapshot(paths) == before)

        // Same contents, same sizes: only the target moved.
        try volume.update(["proxy.conf": "one", "signing.key": "key"])
        let after = ConfigWatcher.snapshot(paths)
        #expect(WatchedFiles.changed(from: before, to: after) == paths.sorted())
        guard case .present(let resolved, _, _, _, _) = after[paths[0]] else {
            Issue.record("proxy.conf missing after the swap")
            return
        }
        #expect(resolved.contains("..2026_1/"))
        #expect(ConfigWatcher.snapshot([mount.appendingPathComponent("absent").path]).values.first == .missing)
    }
}

/// A folder laid out as Kubernetes lays out a ConfigMap or Secret volume: `..2026_N/` holds the
/// files, `..data` points at it, and each file name is a symlink through `..data`. ``update(_:)``
/// writes a new `..2026_N/`, swaps `..data` with one rename, and removes the old folder.
struct KubernetesVolume {
    let mount: URL
    private var generation = 0

    init(at mount: URL, files: [String: String]) throws {
        self.mount = mount
        try FileManager.default.createDirectory(at: mount, withIntermediateDirectories: true)
        let folder = try Self.writeFolder(mount, generation: 0, files: files)
        try FileManager.default.createSymbolicLink(
            atPath: mount.appendingPathComponent("..data").path, withDestinationPath: folder)
        for name in files.keys {
            try FileManager.default.createSymbolicLink(
                atPath: mount.appendingPathComponent(name).path, withDestinationPath: "..data/\(name)")
        }
    }

    func path(_ name: String) -> String { mount.appendingPathComponent(name).path }

    mutating func update(_ files: [String: String]) throws {
        let old = "..2026_\(generation)"
        generation += 1
        let folder = try Self.writeFolder(mount, generation: generation, files: files)
        let temporary = mount.appendingPathComponent("..data_tmp").path
        try FileManager.default.createSymbolicLink(atPath: temporary, withDestinationPath: folder)
        guard rename(temporary, mount.appendingPathComponent("..data").path) == 0 else {
            throw CocoaError(.fileWriteUnknown)
        }
        try FileManager.default.removeItem(at: mount.appendingPathComponent(old))
    }

    private static func writeFolder(_ mount: URL, generation: Int, files: [String: String]) throws -> String {
        let name = "..2026_\(generation)"
        let folder = mount.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (file, text) in files {
            try text.write(to: folder.appendingPathComponent(file), atomically: false, encoding: .utf8)
        }
        return name
    }
}
