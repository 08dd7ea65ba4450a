import ArgumentParser
import CLISupport
import Foundation
import IntercomSync
import Synchronization

/// `--db`, shared by every command that touches the mirror.
struct MirrorOptions: ParsableArguments {
    @Option(
        name: .customLong("db"),
        help: ArgumentHelp(
            "The mirror file. Default: $INTERCOM_SYNC_DB, else ~/.local/share/intercom-sync/mirror.sqlite.",
            valueName: "path"))
    var path: String?

    var resolvedPath: String {
        path ?? MirrorLocation.defaultPath()
    }

    /// Opens the mirror through the library's public facade, connected to Intercom when a
    /// `connection` is given. Only the default location's folder is created on demand: a folder
    /// named explicitly must exist, so a typo is reported rather than silently creating a new
    /// tree. The folder it creates is its owner's alone (0700), as the mirror in it is (0600).
    /// What the open does (finishing a stopped load, upgrading the file) is told on stderr.
    func facade(
        _ mode: IntercomMirror.OpenMode, connection: IntercomConnection? = nil,
        configuration: IntercomMirror.Configuration = IntercomMirror.Configuration()
    ) async throws -> IntercomMirror {
        let location = resolvedPath
        if mode == .createIfMissing { try makeDefaultFolder() }
        var configuration = configuration
        configuration.onFinishingLoad = OpenProgress.finishingLoad
        configuration.onUpgrade = OpenProgress().upgrade
        let mirror: IntercomMirror
        do {
            mirror = try await IntercomMirror.open(
                at: location, mode: mode, connection: connection, configuration: configuration)
        } catch let error as MirrorError where error.kind == .missingDirectory && path == nil {
            throw Self.noMirrorYet(location)
        }
        if mirror.isBeingLoaded { OpenProgress.noteLoadInProgress() }
        return mirror
    }

    /// The hooks `facade(_:connection:configuration:)` sets, for a mirror opened otherwise.
    func configurationReportingOpens() -> IntercomMirror.Configuration {
        IntercomMirror.Configuration(onFinishingLoad: OpenProgress.finishingLoad, onUpgrade: OpenProgress().upgrade)
    }

    /// The default location's folder, made on demand (0700).
    func makeDefaultFolder() throws {
        guard path == nil else { return }
        let folder = URL(fileURLWithPath: resolvedPath).deletingLastPathComponent()
        guard !FileManager.default.fileExists(atPath: folder.path) else { return }
        try FileManager.default.createDirectory(at: folder.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(
            at: folder, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
    }

    /// The default location on a fresh machine: its folder is made by the first sync.
    static func noMirrorYet(_ location: String) -> MirrorError {
        MirrorError(.missingMirror, path: location, detail: "no mirror here yet", remedy: .sync)
    }
}

/// What an open tells on stderr: that it finishes a stopped load, that it upgrades the mirror
/// (with a progress bar), or that another process is loading it.
private final class OpenProgress: Sendable {
    private let bar = Mutex<ProgressBar?>(nil)

    static let finishingLoad: @Sendable () -> Void = {
        Output.note("finishing the indexes of an import or sync that was stopped part-way; this takes a moment")
    }

    var upgrade: @Sendable (_ done: Int, _ total: Int) -> Void {
        { [self] done, total in
            self.bar.withLock { bar in
                if bar == nil {
                    Output.note("upgrading the mirror: compressing the bodies of \(total) contacts (once; it resumes if stopped)")
                    bar = ProgressBar("compressing bodies", total: total)
                }
                bar?.update(done)
                if done >= total { bar?.finish() }
            }
        }
    }

    static func noteLoadInProgress() {
        Output.note(
            "a sync or an import is loading this mirror: what it has committed so far is shown, "
                + "and a search finds the contacts it loads once it finishes")
    }
}
