import Foundation
import GRDB

/// The local SQLite mirror of one workspace's contacts, its outbox and its sync state.
///
/// A file mirror is a WAL-mode `DatabasePool`: one process may write (a sync, an import) while
/// others query. Tests hand `init(writer:)` an in-memory `DatabaseQueue`.
package struct ContactMirror: Sendable {
    /// The GRDB connection (a pool, or a queue for a mirror opened read-only). A mirror opened
    /// read-only opens it at first use: a query or a lookup goes through `reader` alone.
    ///
    /// Only the store's own files use it: everything else changes the mirror through the store's
    /// named operations, each one transaction that leaves it consistent, and reads it through
    /// them or the queries (`scripts/check-dependencies` fails on a use elsewhere).
    var writer: StoreWriter { StoreWriter(base: database.writer, path: path) }

    /// The connection, for the developer tools alone: the benchmark measures the store's SQL
    /// and connection settings directly. Not public, so no app reaches it.
    package var databaseForDeveloperTools: any DatabaseWriter { database.writer }
    let database: LazyWriter
    /// The file behind the mirror, or nil for an in-memory one.
    package let path: String?
    /// The query path's own connection, for a file mirror (`MirrorReader`).
    let reader: MirrorReader?
    /// Whether the mirror was opened with `OpenMode.readOnly`: every write fails.
    package let isReadOnly: Bool
    /// Whether a sync or an import was loading the mirror when it was opened read-only: what it
    /// has committed can be read, and the full-text index does not hold its contacts yet.
    package var loadInProgress = false

    /// Wraps an open database, migrating it to the current schema.
    package init(writer: any DatabaseWriter, path: String? = nil) throws {
        try writer.writeWithoutTransaction { db in Self.registerFunctions(db) }
        var attempts = 0
        while true {
            do {
                try MirrorSchema.migrator.migrate(writer)
                break
            } catch let error as DatabaseError
                where attempts < 4 && [.SQLITE_ERROR, .SQLITE_CONSTRAINT].contains(error.resultCode)
            {
                // Two processes that create one mirror at once both find it unmigrated; the
                // second's migration then meets the tables the first made ("already exists").
                // Read again, the applied migrations include the first's: go on from there.
                attempts += 1
            }
        }
        database = LazyWriter(writer)
        self.path = path
        reader = path.map { MirrorReader(path: $0) }
        isReadOnly = writer.configuration.readonly
    }

    /// A mirror opened read-only whose `reader` found it current and whole; its GRDB queue
    /// opens when something asks for it.
    private init(checkedReadOnly reader: MirrorReader, path: String, sqlitePath: String) {
        database = LazyWriter { try DatabaseQueue(path: sqlitePath, configuration: Self.readOnlyConfiguration) }
        self.path = path
        self.reader = reader
        isReadOnly = true
    }

    /// Wraps a database opened read-only, which must be at the current schema already: an
    /// upgrade writes. `sqlitePath` is what SQLite opens (a URI for a read-only medium). The
    /// schema's damage and any deferred indexing are read in the same transaction, for
    /// `openReadOnly` to judge.
    private init(
        readOnly database: any DatabaseWriter, path: String, sqlitePath: String, checkingSchema: Bool,
        damage: inout SchemaDamage?, deferredIndexing: inout Bool
    ) throws {
        let (current, foundDamage, deferred) = try database.read { db in
            (
                try MirrorSchema.migrator.hasCompletedMigrations(db),
                checkingSchema ? try Self.schemaDamage(db) : nil,
                try Self.hasDeferredIndexing(in: db)
            )
        }
        damage = foundDamage
        deferredIndexing = deferred
        guard current else {
            throw MirrorError(
                .readOnly, path: path,
                detail: "the mirror is read-only here and was written by an older intercom-sync: it needs an "
                    + "upgrade, which writes; open it once where it can be written", remedy: .openWritable)
        }
        self.database = LazyWriter(database)
        self.path = path
        reader = MirrorReader(path: sqlitePath)
        isReadOnly = true
    }

    /// The mirror's SQL functions (`contact_body`, `contact_matches`), on one of its connections.
    static func registerFunctions(_ db: Database) {
        if let connection = db.sqliteConnection { registerFunctions(on: connection) }
    }

    static func registerFunctions(on connection: OpaquePointer) {
        BodyFunctions.register(on: connection)
        SearchMatch.register(on: connection)
        UnicodeLower.register(on: connection)
    }

    /// Closes the mirror's connections. Later use of this value fails.
    package func close() throws {
        reader?.close()
        try database.close()
    }

    /// A fresh mirror in memory, for tests and dry runs.
    package static func inMemory() throws -> ContactMirror {
        try ContactMirror(writer: DatabaseQueue())
    }

    package enum OpenMode: Sendable {
        /// Open an existing mirror; fail if there is none.
        case existing
        /// Open the mirror, creating the file if needed (its folder must exist).
        case createIfMissing
        /// Open an existing mirror to read it, never writing: works on a file this user may not
        /// write, or on a read-only medium. The mirror must be at the current schema.
        case readOnly
    }

    /// `PRAGMA cache_size` of every connection: 32 MB.
    static let cacheSize = -32768

    /// The writer checkpoints every 64 MB of WAL rather than SQLite's 4 MB: each checkpoint
    /// waits for an fsync of the mirror, and a page of 150 updates scattered over a large mirror
    /// dirties about a thousand pages, so at 4 MB every commit waited for one (and wrote again
    /// the pages the last one had written). A page of 150 took 32 ms in a mirror of 1M, 16 ms so.
    static let walCheckpointPages = 16384

    /// Opens the mirror file at `path`.
    ///
    /// A file that is not a mirror, is damaged, or was written by a newer schema is refused with
    /// a `MirrorError` before anything is written to it.
    /// A load killed part-way left its indexing to finish; the open finishes it first (seconds for
    /// a million rows), after calling `onFinishingLoad` so a person can be told why it waits.
    /// A mirror whose bodies are not compressed yet (written by an older intercom-sync) has them
    /// compressed, reporting rows done and in all to `onUpgrade` (`finishBodyUpgrade`).
    ///
    /// A schema that differs from what the migrations build (a table, index or trigger dropped
    /// or altered by hand) is refused with `MirrorError.damagedSchema`, naming what and how to
    /// repair it, unless `checkingSchema` is false (for the repair itself).
    package static func open(
        at givenPath: String, mode: OpenMode, checkingSchema: Bool = true, onFinishingLoad: () -> Void = {},
        onUpgrade: (_ done: Int, _ total: Int) -> Void = { _, _ in }
    ) throws -> ContactMirror {
        let path = filePath(of: givenPath)
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
        if mode == .readOnly, checkingSchema, let mirror = checkedReadOnly(at: path) {
            return mirror
        }
        if fileManager.fileExists(atPath: path) {
            if try inspectExistingFile(at: path) {
                guard mode == .createIfMissing else {
                    throw MirrorError(
                        .missingMirror, path: path, detail: "no mirror here yet (the file is empty)", remedy: .sync)
                }
                // The empty file becomes a mirror: its owner's alone, as a new one is.
                _ = chmod(path, 0o600)
            }
        } else if mode != .createIfMissing {
            throw MirrorError(.missingMirror, path: path, detail: "no mirror here yet", remedy: .sync)
        }
        if mode == .readOnly {
            let (mirror, stoppedLoad) = try openReadOnly(at: path, checkingSchema: checkingSchema)
            guard stoppedLoad else { return mirror }
            // A load that was stopped part-way, with nothing loading now: the open for writing
            // below finishes its indexes first, where the file can be written.
            if let refusal = writeRefusal(path: path, directory: directory) {
                throw MirrorError(
                    .readOnly, path: path,
                    detail: "an import or sync into this mirror was stopped before it finished its indexes, which "
                        + "any command that writes finishes; \(refusal)", remedy: .openWritable)
            }
        }
        if let refusal = writeRefusal(path: path, directory: directory) {
            throw MirrorError(.readOnly, path: path, detail: refusal, remedy: .openWritable)
        }
        if !fileManager.fileExists(atPath: path) { try createPrivateFile(at: path) }
        try makeSidecarsWritable(of: path)
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // WAL with synchronous=NORMAL stays atomic and consistent after a crash; it only
            // skips an fsync per commit. A larger cache keeps index pages hot during bulk pulls.
            try db.execute(
                sql: "PRAGMA synchronous = NORMAL; PRAGMA cache_size = \(cacheSize); PRAGMA temp_store = MEMORY")
            registerFunctions(db)
            if db.configuration.readonly {
                // Readers map the file, which spares a system call per page read. The writer does
                // not: every page a pull touches would count in its resident memory.
                try db.execute(sql: "PRAGMA mmap_size = 268435456")
            } else {
                try db.execute(sql: "PRAGMA wal_autocheckpoint = \(walCheckpointPages)")
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
                            ? "the contacts are intact, and what is damaged derives from them"
                            : "the lost tables held data"),
                    remedy: damage.isRepairable ? .repairSchema : .newMirror)
            }
            try mirror.finishInterruptedLoad(onFinishing: onFinishingLoad)
            try mirror.finishBodyUpgrade(progress: onUpgrade)
            return mirror
        } catch let error as DatabaseError {
            throw MirrorError(error, path: path)
        }
    }

    /// The file a mirror path names: a symbolic link (even one whose target does not exist
    /// yet) is followed, so that the mirror, its `-wal`, `-shm` and lock files are one set
    /// whichever name opens it, and a new mirror is made at the target, private.
    package static func filePath(of path: String) -> String {
        var current = path
        for _ in 0..<32 {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = buffer.withUnsafeMutableBytes { raw in
                readlink(current, raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count - 1)
            }
            guard count > 0 else { return current }
            let target = String(decoding: buffer[0..<count], as: UTF8.self)
            current =
                target.hasPrefix("/")
                ? target : URL(fileURLWithPath: current).deletingLastPathComponent().appendingPathComponent(target).path
        }
        return current
    }

    /// Makes the empty file a new mirror starts from, readable and writable by its owner alone:
    /// it will hold customers' names, emails and phones. SQLite gives the `-wal` and `-shm`
    /// files it makes beside a database the database's own mode, so they are private too.
    private static func createPrivateFile(at path: String) throws {
        let descriptor = Foundation.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if descriptor >= 0 {
            _ = Foundation.close(descriptor)
        } else if errno != EEXIST {
            let reason = String(cString: strerror(errno))
            throw MirrorError(.readOnly, path: path, detail: "the mirror cannot be created: \(reason)", remedy: .openWritable)
        }
    }

    /// SQLite gives the `-wal` and `-shm` it makes the database's mode at that moment: a read
    /// of the mirror while it was read-only (0400) leaves them read-only, and every later write
    /// would fail ("attempt to write a readonly database") though the mirror itself is writable
    /// again. The user's own such files are made 0600 again; another user's are refused by name.
    private static func makeSidecarsWritable(of path: String) throws {
        for file in [path + "-wal", path + "-shm"] {
            var status = stat()
            guard stat(file, &status) == 0, status.st_mode & S_IWUSR == 0 || access(file, W_OK) != 0 else { continue }
            if status.st_uid == geteuid(), chmod(file, 0o600) == 0 { continue }
            throw MirrorError(
                .readOnly, path: path,
                detail: "the mirror's \(file) is not writable by this user (it was made while the mirror was "
                    + "read-only, or by another user): its owner can make it 0600, or remove it while nothing uses "
                    + "the mirror", remedy: .openWritable)
        }
    }

    /// The permission bits of the mirror's files that let users other than its owner read or
    /// write them, by file (the mirror, its `-wal` and `-shm`), for those that have any.
    package static func looseFiles(at path: String) -> [(path: String, mode: mode_t)] {
        let path = filePath(of: path)
        return [path, path + "-wal", path + "-shm"].compactMap { file in
            var status = stat()
            guard stat(file, &status) == 0, status.st_mode & 0o077 != 0 else { return nil }
            return (file, status.st_mode & 0o777)
        }
    }

    /// Why this process cannot write the mirror at `path`, or nil when it can. SQLite would open
    /// a file it may not write read-only without a word and fail at the first write; a write
    /// also needs the folder, for the `-wal`, `-shm` and lock files beside the mirror.
    private static func writeRefusal(path: String, directory: String) -> String? {
        func denied(_ target: String) -> String? {
            guard access(target, W_OK) != 0 else { return nil }
            switch errno {
            case EROFS: return "it is on a read-only file system"
            case EPERM: return "\(target == path ? "the file" : "its folder") is immutable"
            default: return "\(target == path ? "the file" : "its folder \(directory)") is not writable by this user"
            }
        }
        let exists = FileManager.default.fileExists(atPath: path)
        guard let reason = (exists ? denied(path) : nil) ?? denied(directory) else { return nil }
        return "the mirror is read-only here (\(reason)): it can be read, not written"
    }

    /// A read-only open in one pass of the query connection, for the common case: a mirror of
    /// this version, whole and current, with no load left unfinished. Anything else returns nil
    /// for the full open, which explains it. A lookup then never opens a GRDB connection: a
    /// command such as `contacts get --offline` spends a millisecond less.
    private static func checkedReadOnly(at path: String) -> ContactMirror? {
        guard fileHeader(path) == sqliteHeader, !hasHotJournal(path) else { return nil }
        for sqlitePath in [path, immutableURI(path)] {
            let reader = MirrorReader(path: sqlitePath)
            do {
                let found = try reader.inspection()
                guard found.applicationID == MirrorSchema.applicationID,
                    found.migrations == Set(MirrorSchema.migrator.migrations),
                    schemaDigest(found.schema) == expectedSchemaDigest, !found.deferredIndexing
                else { break }
                return ContactMirror(checkedReadOnly: reader, path: path, sqlitePath: sqlitePath)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_CANTOPEN {
                reader.close()
                continue  // A WAL mirror this user cannot make a -shm for: as immutable.
            } catch {
                reader.close()
                return nil
            }
        }
        return nil
    }

    /// The configuration of a mirror opened read-only.
    private static var readOnlyConfiguration: Configuration {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA cache_size = \(cacheSize); PRAGMA temp_store = MEMORY")
            registerFunctions(db)
        }
        return configuration
    }

    /// Opens an existing mirror without ever writing to it. A WAL database needs its `-shm` file,
    /// which a reader creates when it is missing; where it cannot (a read-only medium, a folder
    /// this user may not write), the file is opened as immutable, since nothing can be changing it.
    ///
    /// A mirror whose indexing is deferred is being loaded by a sync or an import that holds its
    /// lock (`loadInProgress`: what it has committed is read), or was left so by one that was
    /// stopped (`stoppedLoad`, for the caller to finish).
    private static func openReadOnly(at path: String, checkingSchema: Bool) throws -> (
        mirror: ContactMirror, stoppedLoad: Bool
    ) {
        let configuration = readOnlyConfiguration
        var mirror: ContactMirror
        var damage: SchemaDamage?
        var deferredIndexing = false
        func wrap(_ queue: DatabaseQueue, _ sqlitePath: String) throws -> ContactMirror {
            try ContactMirror(
                readOnly: queue, path: path, sqlitePath: sqlitePath, checkingSchema: checkingSchema, damage: &damage,
                deferredIndexing: &deferredIndexing)
        }
        do {
            do {
                mirror = try wrap(try DatabaseQueue(path: path, configuration: configuration), path)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_CANTOPEN {
                let uri = immutableURI(path)
                mirror = try wrap(try DatabaseQueue(path: uri, configuration: configuration), uri)
            }
        } catch let error as DatabaseError {
            throw MirrorError(error, path: path)
        }
        if let damage {
            throw MirrorError(
                .damagedSchema, path: path,
                detail: "the mirror's schema is damaged (\(damage)); it is read-only here, so the repair must run "
                    + "where it can be written", remedy: .repairSchema)
        }
        if deferredIndexing {
            if MirrorLock.holder(of: mirror) != nil {
                mirror.loadInProgress = true
            } else if try mirror.writer.read({ db in try hasDeferredIndexing(in: db) }) {
                return (mirror, true)  // Read again: a load that just ended has cleared it.
            }
        }
        return (mirror, false)
    }

    /// SQLite's URI for opening `path` as immutable: no locks, no `-shm`, nothing written.
    static func immutableURI(_ path: String) -> String {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "?#%")
        return "file:" + (absolute.addingPercentEncoding(withAllowedCharacters: allowed) ?? absolute) + "?immutable=1"
    }

    /// Checks, read-only, that an existing file is a mirror this version can use. A rollback
    /// journal beside it (a first open killed while it switched the new file to WAL) is the one
    /// exception: SQLite must roll it back before anything can read the file, so the check
    /// opens it for writing then.
    ///
    /// Returns true for a file that holds no mirror yet (empty, or left by a first open killed
    /// before its schema was written): only an open that may create a mirror makes it one, and
    /// every other open answers as for a missing file.
    @discardableResult
    private static func inspectExistingFile(at path: String) throws -> Bool {
        guard let header = fileHeader(path) else {
            throw MirrorError(.notAMirror, path: path, detail: "the file cannot be read (check its permissions)")
        }
        if header.isEmpty { return true }
        guard header == sqliteHeader else {
            throw MirrorError(.notAMirror, path: path, detail: "not an intercom-sync mirror (not an SQLite database)")
        }
        var configuration = Configuration()
        configuration.readonly = !hasHotJournal(path)
        configuration.busyMode = .timeout(10)
        var blank = false
        do {
            var queue: DatabaseQueue
            do {
                queue = try DatabaseQueue(path: path, configuration: configuration)
                // The first read finds whether a WAL file can be read here (its -shm made).
                _ = try queue.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM sqlite_master") }
            } catch let error as DatabaseError where error.resultCode == .SQLITE_CANTOPEN && configuration.readonly {
                queue = try DatabaseQueue(path: immutableURI(path), configuration: configuration)
            }
            defer { try? queue.close() }
            try queue.read { db in
                let applicationID = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
                // GRDB creates its migrations table before the first migration (which sets the
                // application id) commits: a first open killed in between leaves just that table.
                let tableCount =
                    try Int.fetchOne(
                        db, sql: "SELECT count(*) FROM sqlite_master WHERE tbl_name != 'grdb_migrations'") ?? 0
                if applicationID == 0 && tableCount == 0 {
                    blank = true
                    return
                }
                guard applicationID == MirrorSchema.applicationID else {
                    throw MirrorError(
                        .notAMirror, path: path,
                        detail: "not an intercom-sync mirror (an SQLite database of another application)")
                }
                if try MirrorSchema.migrator.hasBeenSuperseded(db) {
                    throw MirrorError(
                        .newerSchema, path: path,
                        detail: "this mirror was written by a newer intercom-sync", remedy: .upgrade)
                }
            }
        } catch let error as DatabaseError {
            throw MirrorError(error, path: path)
        }
        return blank
    }
}

/// The first 16 bytes of every SQLite database.
private let sqliteHeader = Array("SQLite format 3\0".utf8)

/// Whether a rollback journal with content lies beside the file: SQLite must roll it back
/// before anything can read the file.
private func hasHotJournal(_ path: String) -> Bool {
    var journal = stat()
    return stat(path + "-journal", &journal) == 0 && journal.st_size > 0
}

/// The first 16 bytes of a file (fewer if it is shorter), or nil if it cannot be read.
private func fileHeader(_ path: String) -> [UInt8]? {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return nil }
    defer { close(descriptor) }
    var header = [UInt8](repeating: 0, count: 16)
    let length = read(descriptor, &header, header.count)
    return length < 0 ? nil : Array(header.prefix(length))
}

/// A GRDB connection, open now or at first use. Opening fails only where the query connection
/// already opened the same file (a process out of file descriptors): that stops the process with
/// the reason, since a property cannot throw.
final class LazyWriter: @unchecked Sendable {
    private let lock = NSLock()
    /// Guarded by `lock`.
    private var opened: (any DatabaseWriter)?
    private let open: (() throws -> any DatabaseWriter)?

    init(_ writer: any DatabaseWriter) {
        opened = writer
        open = nil
    }

    init(opening open: @escaping () throws -> any DatabaseWriter) {
        self.open = open
    }

    var writer: any DatabaseWriter {
        lock.withLock {
            if let opened { return opened }
            do {
                let writer = try open!()
                opened = writer
                return writer
            } catch {
                fatalError("intercom-sync: cannot open the mirror a second time: \(error)")
            }
        }
    }

    func close() throws {
        try lock.withLock { try opened?.close() }
    }

    /// Whether the connection is open yet.
    var isOpen: Bool { lock.withLock { opened != nil } }
}
