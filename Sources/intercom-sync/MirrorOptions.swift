import ArgumentParser
import CLISupport
import Foundation
import IntercomSync

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

    /// Opens the mirror. Only the default location's folder is created on demand: a folder named
    /// explicitly must exist, so a typo is reported rather than silently creating a new tree. The
    /// folder it creates is its owner's alone (0700), as the mirror in it is (0600).
    func open(_ mode: ContactMirror.OpenMode, checkingSchema: Bool = true) throws -> ContactMirror {
        let location = resolvedPath
        if path == nil, mode == .createIfMissing {
            let folder = URL(fileURLWithPath: location).deletingLastPathComponent()
            if !FileManager.default.fileExists(atPath: folder.path) {
                try FileManager.default.createDirectory(
                    at: folder.deletingLastPathComponent(), withIntermediateDirectories: true)
                try FileManager.default.createDirectory(
                    at: folder, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            }
        }
        let store: ContactMirror
        do {
            store = try openStore(location, mode, checkingSchema: checkingSchema)
        } catch let error as MirrorError where error.kind == .missingDirectory && path == nil {
            // The default location on a fresh machine: its folder is made by the first sync.
            throw MirrorError(.missingMirror, path: location, detail: "no mirror here yet", remedy: .sync)
        }
        if store.loadInProgress {
            Output.note(
                "a sync or an import is loading this mirror: what it has committed so far is shown, "
                    + "and a search finds the contacts it loads once it finishes")
        }
        return store
    }

    /// The mirror at `location`, telling on stderr when its open finishes a stopped load or
    /// upgrades it.
    private func openStore(_ location: String, _ mode: ContactMirror.OpenMode, checkingSchema: Bool) throws
        -> ContactMirror
    {
        var upgrade: ProgressBar?
        return try ContactMirror.open(
            at: location, mode: mode, checkingSchema: checkingSchema,
            onFinishingLoad: {
                Output.note("finishing the indexes of an import or sync that was stopped part-way; this takes a moment")
            },
            onUpgrade: { done, total in
                if upgrade == nil {
                    Output.note("upgrading the mirror: compressing the bodies of \(total) contacts (once; it resumes if stopped)")
                    upgrade = ProgressBar("compressing bodies", total: total)
                }
                upgrade?.update(done)
                if done >= total { upgrade?.finish() }
            })
    }

    /// The mirror opened as `open(_:)` does, as the library's facade, with no connection to
    /// Intercom: for commands that only read it or stage writes.
    func facade(_ mode: ContactMirror.OpenMode) throws -> IntercomMirror {
        IntercomMirror(store: try open(mode), client: nil, configuration: IntercomMirror.Configuration())
    }
}
