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
/// The copy is refused (and the caller builds the index in place) unless the mirror still holds
/// the snapshot's contacts: the FTS index unchanged since (an update or delete of an indexed row
/// changes it), as many contacts up to the snapshot's last row_id, and that row as it was.
/// Contacts inserted after the snapshot are indexed in the copy's transaction.
final class FTSBuildBeside: @unchecked Sendable {
    /// What the build saw of the mirror.
    private struct Snapshot {
        var structure: Data?
        var contacts: Int
        var lastRow: [DatabaseValue]
    }

    private let side: DatabaseQueue
    private let building = DispatchGroup()
    /// Written by the build's thread before it leaves `building`.
    private var built: Result<Snapshot, any Error> = .failure(CancellationError())

    /// FTS5's structure record, which changes with every write to the index.
    private static let structureRowID = 10
    private static let shadowTables = ["data", "idx", "docsize", "config"]

    /// Starts building on another thread.
    init(mirrorPath: String) throws {
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
        DispatchQueue.global(qos: .userInitiated).async(group: building) { [self] in
            built = Result { try build() }
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
            var snapshot = Snapshot(structure: nil, contacts: 0, lastRow: [])
            try db.inTransaction(.deferred) {
                snapshot.structure = try Self.structure(in: db)
                try db.execute(
                    sql: """
                        INSERT INTO main.contacts_fts (rowid, name, email, phone)
                        SELECT row_id, name, email, phone FROM mirror.contacts
                        """)
                snapshot.contacts = try Int.fetchOne(db, sql: "SELECT count(*) FROM mirror.contacts") ?? 0
                snapshot.lastRow = try Self.lastRow(upTo: Int64.max, in: db)
                return .commit
            }
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
                let lastRowID = snapshot.lastRow.first.flatMap { Int64.fromDatabaseValue($0) } ?? 0
                try db.execute(
                    sql: """
                        INSERT INTO mirror.contacts_fts (rowid, name, email, phone)
                        SELECT row_id, name, email, phone FROM mirror.contacts WHERE row_id > ?;
                        DELETE FROM mirror.sync_state WHERE key = ?;
                        """, arguments: [lastRowID, SyncStateKey.ftsDeferred.rawValue])
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

    /// Waits until the build has read its snapshot and indexed it.
    func waitUntilBuilt() {
        building.wait()
    }

    private func matches(_ snapshot: Snapshot, in db: Database) throws -> Bool {
        guard try Self.structure(in: db) == snapshot.structure else { return false }
        let lastRowID = snapshot.lastRow.first.flatMap { Int64.fromDatabaseValue($0) } ?? 0
        let newer =
            try Int.fetchOne(db, sql: "SELECT count(*) FROM mirror.contacts WHERE row_id > ?", arguments: [lastRowID])
            ?? 0
        let contacts = try Int.fetchOne(db, sql: "SELECT count(*) FROM mirror.contacts") ?? 0
        return try contacts - newer == snapshot.contacts && Self.lastRow(upTo: lastRowID, in: db) == snapshot.lastRow
    }

    private static func structure(in db: Database) throws -> Data? {
        try Data.fetchOne(
            db, sql: "SELECT block FROM mirror.contacts_fts_data WHERE id = ?", arguments: [structureRowID])
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
