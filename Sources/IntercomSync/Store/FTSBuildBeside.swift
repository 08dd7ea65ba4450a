import Foundation
import GRDB

/// Builds a bulk load's full-text index on the second core while the mirror's writer builds the
/// B-tree indexes, then puts it into the mirror in one transaction.
///
/// SQLite lets one connection write a database at a time, so the build happens in a private
/// temporary database of its own (SQLite deletes the file when the connection closes, or at
/// once on a kill), with the mirror attached for reading. Its FTS table is created from the
/// mirror's own definition, fed every contact of one snapshot, and its shadow tables are then
/// copied over the mirror's. Those tables are what FTS5 itself writes, by the same library, under
/// the same settings; another connection commits them, and FTS5 reloads its cached state of
/// the index whenever another connection has committed (`PRAGMA data_version`).
///
/// A load (an import, a first pull) can be followed as it commits (`followingLoad`), a pass of
/// the new rows each time, on the time the load leaves the second core; otherwise the build
/// reads one snapshot taken when the load ends.
///
/// A row a pass indexed may change or go afterwards: the mirror's own FTS index changes for the
/// rows it held before the load, and triggers count the rewrites of the rows above the
/// load's flag (`SyncStateKey.ftsRewrites`), whichever connection makes them. When either
/// moves, the build starts again from the snapshot in hand (a few times; then it waits for
/// the load's end). The copy is refused (and the caller builds the index in place) unless the
/// mirror still holds the contacts the passes indexed: both marks as the build began, as many
/// contacts up to the last row_id indexed, and the last row of each pass as it was (only a
/// last row can have its row_id taken again). Contacts inserted after the last pass are indexed
/// in the copy's transaction.
final class FTSBuildBeside: @unchecked Sendable {
    /// What the build saw of the mirror.
    private struct Snapshot {
        /// The FTS index's structure record and the count of rewrites (`SyncStateKey.ftsRewrites`)
        /// when the build began.
        var marks = Marks()
        /// How many contacts it indexed.
        var contacts = 0
        /// The row_id and indexed columns of the last contact each pass indexed: only the last
        /// row can have its row_id taken again after a delete.
        var lastRows: [[DatabaseValue]] = []
        var lastRowID: Int64 { lastRows.last.map(FTSBuildBeside.rowID) ?? 0 }
    }

    private let side: DatabaseQueue
    private let building = DispatchGroup()
    /// Written by the build's thread before it leaves `building`.
    private var built: Result<Snapshot, any Error> = .failure(CancellationError())
    /// Whether the build follows a load still running, a pass each time the load commits,
    /// until `loadEnded`. Guarded by `lock`.
    private var following: Bool
    /// The last row_id the build has indexed, and how many times it started again. Guarded by
    /// `lock`.
    private var progress: (indexedThrough: Int64, restarts: Int) = (0, 0)
    private let lock = NSCondition()

    #if os(Linux)
        /// Linux's SCHED_IDLE, which Glibc's headers define only for GNU sources.
        private static let idlePolicy: Int32 = 5
    #endif

    /// FTS5's structure record, which changes with every write to the index.
    private static let structureRowID = 10
    private static let shadowTables = ["data", "idx", "docsize", "config"]

    /// Starts building on another thread. With `followingLoad`, the build indexes the contacts
    /// a load commits as it goes (using the time the load leaves the second core idle), until
    /// `loadEnded()`.
    init(mirrorPath: String, followingLoad: Bool = false) throws {
        following = followingLoad
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // Nothing here needs to survive a crash: the mirror keeps its flags until the copy.
            try db.execute(sql: "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -2048")
        }
        side = try DatabaseQueue(path: "", configuration: configuration)
        try side.writeWithoutTransaction { db in
            try db.execute(sql: "ATTACH DATABASE ? AS mirror", arguments: [mirrorPath])
            // As the mirror's own connections commit: the WAL is synced at checkpoints.
            try db.execute(sql: "PRAGMA mirror.synchronous = NORMAL")
        }
        building.enter()
        // A thread of its own, which ends with the build: following a load, it runs as
        // SCHED_IDLE, on the time the load's two threads leave, and an unprivileged thread may
        // not take the normal policy back.
        let thread = Thread { [self] in
            if followingLoad {
                #if os(Linux)
                    var parameters = sched_param()
                    _ = pthread_setschedparam(pthread_self(), Self.idlePolicy, &parameters)
                #endif
            }
            built = Result { try build() }
            building.leave()
        }
        thread.name = "intercom-sync fts"
        #if !os(Linux)
            // Apple platforms have no SCHED_IDLE: the lowest quality of service is their nearest.
            if followingLoad { thread.qualityOfService = .background }
        #endif
        thread.start()
    }

    /// Tells a build that follows a load that the load has committed its last row.
    func loadEnded() {
        lock.withLock {
            following = false
            lock.broadcast()
        }
    }

    private func build() throws -> Snapshot {
        try side.writeWithoutTransaction { db in
            guard
                let definition = try String.fetchOne(
                    db, sql: "SELECT sql FROM mirror.sqlite_master WHERE name = 'contacts_fts'")
            else { throw MirrorError(.notAMirror, detail: "the mirror has no full-text index") }
            try db.execute(sql: definition)
            // The bulk settings of `ContactMirror.finishDeferredIndexing(in:)`, back to FTS5's
            // defaults once the rows are in.
            try db.execute(
                sql: """
                    INSERT INTO main.contacts_fts (contacts_fts, rank) VALUES ('automerge', 0);
                    INSERT INTO main.contacts_fts (contacts_fts, rank) VALUES ('pgsz', 8000);
                    """)
            var snapshot = Snapshot()
            var restarts = 0
            var last = true
            repeat {
                last = lock.withLock { !following }
                // Each pass reads one snapshot of the mirror; the one after `loadEnded` sees
                // every row of the load.
                try db.inTransaction(.deferred) {
                    let marks = try Self.marks(in: db)
                    var lastRow = try Self.lastRow(upTo: .max, in: db)
                    if snapshot.lastRows.isEmpty {
                        snapshot.marks = marks
                    } else if marks != snapshot.marks || Self.lost(snapshot, lastRow: lastRow) {
                        // A row a pass indexed changed or went since (a load's update, another
                        // process's refresh): the copy would be refused. Start again from this
                        // snapshot.
                        try db.execute(sql: "INSERT INTO main.contacts_fts (contacts_fts) VALUES ('delete-all')")
                        snapshot = Snapshot(marks: marks)
                        restarts += 1
                        lastRow = try Self.lastRow(upTo: .max, in: db)
                    }
                    let lastRowID = Self.rowID(of: lastRow)
                    if lastRowID > snapshot.lastRowID {
                        try db.execute(
                            sql: """
                                INSERT INTO main.contacts_fts (rowid, name, email, phone)
                                SELECT row_id, name, email, phone FROM mirror.contacts WHERE row_id > ?
                                """, arguments: [snapshot.lastRowID])
                        snapshot.lastRows.append(lastRow)
                    }
                    return .commit
                }
                lock.withLock {
                    progress = (snapshot.lastRowID, restarts)
                    lock.broadcast()
                }
                if !last {
                    // A load that keeps rewriting what was indexed is indexed once, at its end.
                    let pause = restarts < Self.maximumRestarts ? Date(timeIntervalSinceNow: 0.05) : .distantFuture
                    lock.withLock { if following { _ = lock.wait(until: pause) } }
                }
            } while !last
            snapshot.contacts = try Int.fetchOne(db, sql: "SELECT count(*) FROM main.contacts_fts_docsize") ?? 0
            try db.execute(
                sql: """
                    INSERT INTO main.contacts_fts (contacts_fts, rank) VALUES ('automerge', 4);
                    INSERT INTO main.contacts_fts (contacts_fts, rank) VALUES ('pgsz', 4050);
                    """)
            return snapshot
        }
    }

    /// Waits for the build, then copies it into the mirror and clears `fts.deferred`, in one
    /// transaction. False when the mirror changed in a way the copy cannot follow: nothing was
    /// written then. Either way the temporary database is gone afterwards.
    func finish() throws -> Bool {
        waitUntilBuilt()
        defer { try? side.close() }
        let snapshot = try built.get()
        return try side.writeWithoutTransaction { db in
            try db.execute(sql: "BEGIN IMMEDIATE")
            do {
                guard try matches(snapshot, in: db) else {
                    try db.execute(sql: "ROLLBACK")
                    return false
                }
                for table in Self.shadowTables {
                    try db.execute(
                        sql: """
                            DELETE FROM mirror.contacts_fts_\(table);
                            INSERT INTO mirror.contacts_fts_\(table) SELECT * FROM main.contacts_fts_\(table);
                            """)
                }
                try db.execute(
                    sql: """
                        INSERT INTO mirror.contacts_fts (rowid, name, email, phone)
                        SELECT row_id, name, email, phone FROM mirror.contacts WHERE row_id > ?;
                        DELETE FROM mirror.sync_state WHERE key IN (?, ?);
                        """,
                    arguments: [snapshot.lastRowID, SyncStateKey.ftsDeferred.rawValue, SyncStateKey.ftsRewrites.rawValue])
                // A bulk load dropped it (`ContactMirror.beginBulkLoad(in:)`); the copy holds
                // every row, including any a dropped trigger would have indexed at once.
                try db.execute(sql: MirrorSchema.ftsInsertTrigger(schema: "mirror."))
                try db.execute(sql: "COMMIT")
                return true
            } catch {
                try? db.execute(sql: "ROLLBACK")
                throw error
            }
        }
    }

    /// The last row_id a pass has indexed so far.
    var indexedThrough: Int64 { lock.withLock { progress.indexedThrough } }

    /// Waits until a pass has indexed the rows up to `rowID` after starting again at least
    /// `restarts` times (true), or `seconds` went by; returns how many times it started again.
    func waitUntilIndexed(through rowID: Int64, restarts: Int = 0, seconds: Double) -> (indexed: Bool, restarts: Int) {
        let deadline = Date(timeIntervalSinceNow: seconds)
        return lock.withLock {
            func reached() -> Bool { progress.indexedThrough >= rowID && progress.restarts >= restarts }
            while !reached() && lock.wait(until: deadline) {}
            return (reached(), progress.restarts)
        }
    }

    /// Waits until the build has read its snapshot and indexed it.
    func waitUntilBuilt() {
        building.wait()
    }

    private func matches(_ snapshot: Snapshot, in db: Database) throws -> Bool {
        guard try Self.marks(in: db) == snapshot.marks else { return false }
        // All of them (SQLite counts the smallest index) less the few inserted since.
        let contacts = try Int.fetchOne(db, sql: "SELECT count(*) FROM mirror.contacts") ?? 0
        let newer =
            try Int.fetchOne(
                db, sql: "SELECT count(*) FROM mirror.contacts WHERE row_id > ?", arguments: [snapshot.lastRowID]) ?? 0
        guard contacts - newer == snapshot.contacts else { return false }
        for row in snapshot.lastRows {
            guard try Self.lastRow(upTo: Self.rowID(of: row), in: db) == row else { return false }
        }
        return true
    }

    /// What changes when a row the build has indexed may have: the mirror's FTS index (its
    /// structure record changes with every write to it) and the count of rewrites of the rows
    /// waiting for it.
    private struct Marks: Equatable {
        var structure: Data?
        var rewrites: String?
    }

    private static func marks(in db: Database) throws -> Marks {
        Marks(
            structure: try Data.fetchOne(
                db, sql: "SELECT block FROM mirror.contacts_fts_data WHERE id = ?", arguments: [structureRowID]),
            rewrites: try String.fetchOne(
                db, sql: "SELECT value FROM mirror.sync_state WHERE key = ?",
                arguments: [SyncStateKey.ftsRewrites.rawValue]))
    }

    /// Whether the last row a pass indexed went (a last row's row_id can be taken again).
    private static func lost(_ snapshot: Snapshot, lastRow: [DatabaseValue]) -> Bool {
        let lastRowID = rowID(of: lastRow)
        return lastRowID < snapshot.lastRowID
            || (lastRowID > 0 && lastRowID == snapshot.lastRowID && lastRow != snapshot.lastRows.last)
    }

    /// How many times a build that follows a load starts again before it waits for the load's end.
    private static let maximumRestarts = 3

    /// The row_id of a row `lastRow` read; 0 for none.
    private static func rowID(of row: [DatabaseValue]) -> Int64 {
        row.first.flatMap { Int64.fromDatabaseValue($0) } ?? 0
    }

    /// The row_id and indexed columns of the last contact at or below `rowID`.
    private static func lastRow(upTo rowID: Int64, in db: Database) throws -> [DatabaseValue] {
        let row = try Row.fetchOne(
            db,
            sql: """
                SELECT row_id, name, email, phone FROM mirror.contacts WHERE row_id <= ?
                ORDER BY row_id DESC LIMIT 1
                """, arguments: [rowID])
        return row.map { Array($0.databaseValues) } ?? []
    }
}
