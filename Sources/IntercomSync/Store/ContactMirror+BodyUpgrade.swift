import Foundation
import GRDB

/// The upgrade of a mirror whose bodies are text (written before bodies were compressed): on
/// its first open, the bodies are compressed in batches of row_ids, each committed with the
/// row_id it reached (`bodies.upgrade`), so a killed upgrade resumes where it stopped. The
/// mirror reads as before meanwhile: a text body is its own JSON.
extension ContactMirror {
    /// Rows compressed a transaction.
    static let upgradeBatch: Int64 = 10_000

    /// Finishes an upgrade under way, unless another process holds the mirror (it may be
    /// upgrading it). `progress` gets the rows done and the rows in all, after each batch.
    /// When the bodies freed more than half the file, the file is compacted (`VACUUM`) at the
    /// end; a compaction that fails (a full disk) leaves the mirror whole, only larger.
    func finishBodyUpgrade(progress: (_ done: Int, _ total: Int) -> Void) throws {
        guard let start = try syncState(.bodiesUpgrade).flatMap({ Int64($0) }),
            let lock = try? MirrorLock.acquire(self, purpose: "intercom-sync upgrade")
        else { return }
        try withExtendedLifetime(lock) {
            let last = try writer.read { db in try Int64.fetchOne(db, sql: "SELECT ifnull(max(row_id), 0) FROM contacts") } ?? 0
            let total = Int(max(last - start, 0))
            try writer.write { db in
                if try BodyDictionaries.current(in: db).dictionaryID == 0 {
                    try BodyDictionaries.train(in: db, now: Int(Date().timeIntervalSince1970))
                }
            }
            var cursor = start
            progress(0, total)
            while cursor < last {
                let upper = min(cursor + Self.upgradeBatch, last)
                try writer.write { db in
                    try BodyDictionaries.repack(
                        where: "row_id > ? AND row_id <= ? AND typeof(body) = 'text'", arguments: [cursor, upper],
                        with: try BodyDictionaries.current(in: db), in: db)
                    try Self.setSyncState(.bodiesUpgrade, to: String(upper), in: db)
                }
                cursor = upper
                progress(Int(cursor - start), total)
            }
            try compactIfWorthwhile()
            try setSyncState(.bodiesUpgrade, to: nil)
        }
    }

    /// Rewrites the file without its free pages when they are more than half of it.
    private func compactIfWorthwhile() throws {
        let (free, all) = try writer.read { db in
            (
                try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0,
                try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
            )
        }
        guard free * 2 > all else { return }
        try writer.writeWithoutTransaction { db in
            // The copy VACUUM builds goes to a temporary file, not memory: it is the mirror's size.
            try Self.keepingPublishNotes(in: db) { try db.execute(sql: "PRAGMA temp_store = FILE") }
            defer { try? Self.keepingPublishNotes(in: db) { try db.execute(sql: "PRAGMA temp_store = MEMORY") } }
            do {
                try db.execute(sql: "VACUUM")
            } catch let error as DatabaseError where error.resultCode == .SQLITE_FULL {
                return
            }
            try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
        }
    }
}
