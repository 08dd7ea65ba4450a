import Foundation
import GRDB

/// The local SQLite mirror of one workspace's contacts, its outbox and its sync state.
///
/// A file mirror is a WAL-mode `DatabasePool`: one process may write (a sync, an import) while
/// others query. Tests hand `init(writer:)` an in-memory `DatabaseQueue`.
public struct ContactMirror: Sendable {
    public let writer: any DatabaseWriter
    /// The file behind the mirror, or nil for an in-memory one.
    public let path: String?
    /// The query path's own connection, for a file mirror (`MirrorReader`).
    let reader: MirrorReader?

    /// Wraps an open database, migrating it to the current schema.
    public init(writer: any DatabaseWriter, path: String? = nil) throws {
        try MirrorSchema.migrator.migrate(writer)
        self.writer = writer
        self.path = path
        reader = path.map(MirrorReader.init(path:))
    }

    /// Closes the mirror's connections. Later use of this value fails.
    public func close() throws {
        reader?.close()
        try writer.close()
    }

    /// A fresh mirror in memory, for tests and dry runs.
    public static func inMemory() throws -> ContactMirror {
        try ContactMirror(writer: DatabaseQueue())
    }

    public enum OpenMode: Sendable {
        /// Open an existing mirror; fail if there is none.
        case existing
        /// Open the mirror, creating the file if needed (its folder must exist).
        case createIfMissing
    }

    /// `PRAGMA cache_size` of every connection: 32 MB.
    static let cacheSize = -32768

    /// Opens the mirror file at `path`.
    ///
    /// A file that is not a mirror, is damaged, or was written by a newer schema is refused with
    /// a `MirrorError` before anything is written to it.
    /// A load killed part-way left its indexing to finish; the open finishes it first (seconds for
    /// a million rows), after calling `onFinishingLoad` so a person can be told why it waits.
    ///
    /// A schema that differs from what the migrations build (a table, index or trigger dropped
    /// or altered by hand) is refused with `MirrorError.damagedSchema`, naming what and how to
    /// repair it, unless `checkingSchema` is false (for the repair itself).
    public static func open(
        at path: String, mode: OpenMode, checkingSchema: Bool = true, onFinishingLoad: () -> Void = {}
    ) throws -> ContactMirror {
        let url = URL(fileURLWithPath: path)
        let fileManager = FileManager.default
        let directory = url.deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard fileManager.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw MirrorError(.missingDirectory, path: path, detail: "the folder \(directory) does not exist")
        }
        var status = stat()
        if stat(path, &status) == 0, (status.st_mode & S_IFMT) != S_IFREG {
            // Before SQLite sees it: it would write a journal beside a device, in /dev.
            let kind: String
            switch status.st_mode & S_IFMT {
            case S_IFDIR: kind = "a folder"
            case S_IFCHR, S_IFBLK: kind = "a device"
            case S_IFIFO: kind = "a pipe"
            default: kind = "a special file"
            }
            throw MirrorError(.notAMirror, path: path, detail: "it is \(kind), not a mirror file: give a file's path")
        }
        if fileManager.fileExists(atPath: path) {
            try inspectExistingFile(at: path)
        } else if mode == .existing {
            throw MirrorError(
                .missingMirror, path: path,
                detail: "no mirror here yet: run `intercom-sync sync` first, or pass --db to pick another file")
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // WAL with synchronous=NORMAL stays atomic and consistent after a crash; it only
            // skips an fsync per commit. A larger cache keeps index pages hot during bulk pulls.
            try db.execute(
                sql: "PRAGMA synchronous = NORMAL; PRAGMA cache_size = \(cacheSize); PRAGMA temp_store = MEMORY")
            if db.configuration.readonly {
                // Readers map the file, which spares a system call per page read. The writer does
                // not: every page a pull touches would count in its resident memory.
                try db.execute(sql: "PRAGMA mmap_size = 268435456")
            }
        }
        do {
            let pool = try DatabasePool(path: path, configuration: configuration)
            let mirror = try ContactMirror(writer: pool, path: path)
            if checkingSchema, let damage = try mirror.schemaDamage() {
                throw MirrorError(
                    .damagedSchema, path: path,
                    detail: "the mirror's schema is damaged (\(damage)); "
                        + (damage.isRepairable
                            ? "`intercom-sync doctor --repair` rebuilds it from the contacts, which are intact"
                            : "the lost tables held data: move the file aside and run `intercom-sync sync` for a new mirror"))
            }
            try mirror.finishInterruptedLoad(onFinishing: onFinishingLoad)
            return mirror
        } catch let error as DatabaseError {
            throw MirrorError(.corrupt, path: path, detail: "cannot open the mirror: \(error.message ?? "\(error)")")
        }
    }

    /// Checks, read-only, that an existing file is a mirror this version can use. A rollback
    /// journal beside it (a first open killed while it switched the new file to WAL) is the one
    /// exception: SQLite must roll it back before anything can read the file, so the check
    /// opens it for writing then.
    private static func inspectExistingFile(at path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw MirrorError(.notAMirror, path: path, detail: "the file cannot be read (check its permissions)")
        }
        let header = (try? handle.read(upToCount: 16)) ?? Data()
        try? handle.close()
        if header.isEmpty { return }  // An empty file becomes a new mirror.
        guard header == Data("SQLite format 3\0".utf8) else {
            throw MirrorError(.notAMirror, path: path, detail: "not an intercom-sync mirror (not an SQLite database)")
        }
        var configuration = Configuration()
        let journal = try? FileManager.default.attributesOfItem(atPath: path + "-journal")
        configuration.readonly = (journal?[.size] as? Int ?? 0) == 0
        configuration.busyMode = .timeout(10)
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            try queue.read { db in
                let applicationID = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
                // GRDB creates its migrations table before the first migration (which sets the
                // application id) commits: a first open killed in between leaves just that table.
                let tableCount =
                    try Int.fetchOne(
                        db, sql: "SELECT count(*) FROM sqlite_master WHERE tbl_name != 'grdb_migrations'") ?? 0
                if applicationID == 0 && tableCount == 0 { return }
                guard applicationID == MirrorSchema.applicationID else {
                    throw MirrorError(
                        .notAMirror, path: path,
                        detail: "not an intercom-sync mirror (an SQLite database of another application)")
                }
                if try MirrorSchema.migrator.hasBeenSuperseded(db) {
                    throw MirrorError(
                        .newerSchema, path: path,
                        detail: "this mirror was written by a newer intercom-sync; upgrade intercom-sync to use it")
                }
            }
        } catch let error as DatabaseError {
            switch error.resultCode {
            case .SQLITE_CORRUPT, .SQLITE_NOTADB:
                throw MirrorError(.corrupt, path: path, detail: "the mirror is damaged (\(error.message ?? "corrupt"))")
            default:
                throw MirrorError(.corrupt, path: path, detail: "cannot read the mirror: \(error.message ?? "\(error)")")
            }
        }
    }
}
