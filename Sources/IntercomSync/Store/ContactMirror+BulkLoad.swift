import GRDB

/// Deferred indexing: how a large load writes a million contacts without walking every index a
/// million times.
///
/// While `fts.deferred` is set in `sync_state`, the FTS triggers stand aside for rows above the
/// row_id it holds, and those rows are indexed by one statement at the end. A bulk load also drops
/// the secondary indexes (`MirrorSchema.deferrableIndexes`) and builds them again at its end. Both
/// flags are committed with the load's first batch, so a load that is killed part-way leaves
/// them behind, and the next `ContactMirror.open` finishes the indexing before anything else.
extension ContactMirror {
    /// Runs `body`, a load of many contacts in transactions of its own, with indexing deferred
    /// to its end. The caller holds the `MirrorLock`, so no other process takes the flags for
    /// an interrupted load and finishes it under the load's feet. Queries keep working during
    /// the load, slower and without the new rows in full-text search.
    ///
    /// If `body` throws, the indexing is finished anyway before the error goes on.
    /// `beforeIndexing` is called when the load is done and the indexing (seconds for a
    /// million rows) begins.
    ///
    /// `appending` says the load only inserts, in row_id and id order (an import: local ids are
    /// time-ordered), so it runs with a smaller page cache.
    package func bulkLoading<T>(
        appending: Bool = false, beforeIndexing: () -> Void = {}, _ body: () throws -> T
    ) throws -> T {
        try beginBulkLoad(appending: appending)
        let following = appending ? path.flatMap { try? FTSBuildBeside(mirrorPath: $0, followingLoad: true) } : nil
        let result: T
        do {
            result = try body()
        } catch {
            following?.loadEnded()
            try? endBulkLoad(following: following)
            throw error
        }
        following?.loadEnded()
        beforeIndexing()
        try endBulkLoad(following: following)
        return result
    }

    /// `bulkLoading` for a load that awaits (a pull). The full-text index of a load into a mirror
    /// file is built as the load commits (`FTSBuildBeside`), on the time its threads leave: a
    /// pull at the rate limit waits for every window's reset.
    package func bulkLoading<T>(beforeIndexing: () -> Void = {}, _ body: () async throws -> T) async throws -> T {
        try beginBulkLoad(pulling: true)
        let following = path.flatMap { try? FTSBuildBeside(mirrorPath: $0, followingLoad: true) }
        let result: T
        do {
            result = try await body()
        } catch {
            following?.loadEnded()
            try? endBulkLoad(following: following)
            throw error
        }
        following?.loadEnded()
        beforeIndexing()
        try endBulkLoad(following: following)
        return result
    }

    private func beginBulkLoad(appending: Bool = false, pulling: Bool = false) throws {
        try writer.write { db in try Self.beginBulkLoad(in: db, pulling: pulling) }
        if appending {
            // Rows and ids that only append touch the last pages of each b-tree: 8 MB of cache
            // hold them, where the usual 32 MB filled up with pages never read again.
            try writer.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA cache_size = -8192") }
        }
    }

    /// Builds the deferred indexes.
    private func endBulkLoad(following: FTSBuildBeside? = nil) throws {
        try finishDeferredIndexing(besideBuild: following)
    }

    /// Builds what a load deferred, one index a transaction (each `CREATE INDEX IF NOT EXISTS`
    /// can simply run again after a crash), and then the FTS entries, which clear the flags.
    /// The sorts spill to temporary files rather than memory, and a smaller page cache bounds
    /// the sorter's buffers: a million-row index sorted in memory would double the process's size.
    ///
    /// When enough rows wait for the FTS index (`ftsBesideMinimumRows`) in a mirror file, the FTS
    /// index is built beside the B-tree indexes, on the second core (`FTSBuildBeside`); if that
    /// fails or the mirror changed under it, it is built here afterwards. Returns how it was built.
    /// Otherwise a second thread sorts beside the first (a tenth off the sorts), each with half
    /// the cache, and the FTS build, which sorts nothing, gets the 8 MB back.
    @discardableResult
    func finishDeferredIndexing(ftsBesideMinimumRows: Int = 100_000, besideBuild: FTSBuildBeside? = nil) throws
        -> FTSBuild
    {
        func set(_ pragmas: String) throws {
            try writer.writeWithoutTransaction { db in
                try Self.keepingPublishNotes(in: db) { try db.execute(sql: pragmas) }
            }
        }
        let (indexesDeferred, lastRowID, waitingForFTS) = try writer.read { db in
            let deferred = try Self.syncState(.ftsDeferred, in: db).map { Int64($0) ?? 0 }
            let lastRowID = try Int64.fetchOne(db, sql: "SELECT ifnull(max(row_id), 0) FROM contacts") ?? 0
            // The row_ids above the flag's, a bound on the rows waiting that costs no scan.
            let waiting = deferred.map { Int(lastRowID - $0) }
            return (try Self.syncState(.indexesDeferred, in: db) != nil, lastRowID, waiting)
        }
        var beside = besideBuild
        if beside == nil, let path, let waitingForFTS, waitingForFTS >= ftsBesideMinimumRows {
            beside = try? FTSBuildBeside(mirrorPath: path)
        }
        // With the FTS index building beside, each core has its own work: helper threads for
        // the sorts would take the FTS build's core, and it is the longer of the two. Unless a
        // build that followed the load has little left (a pull leaves it the time it waits for
        // the rate limit): then the sorts take both cores, and the build finishes after them.
        let besideIsBehind = beside.map { lastRowID - $0.indexedThrough > Int64(waitingForFTS ?? 0) / 10 } ?? false
        try set("PRAGMA temp_store = FILE; PRAGMA cache_size = -4096; PRAGMA threads = \(besideIsBehind ? 0 : 2)")
        defer {
            try? set("PRAGMA temp_store = MEMORY; PRAGMA cache_size = \(ContactMirror.cacheSize); PRAGMA threads = 0")
        }
        if indexesDeferred {
            for index in MirrorSchema.deferrableIndexes {
                try writer.write { db in try db.execute(sql: index.sql) }
            }
        }
        let builtBeside = (try? beside?.finish()) ?? false
        try set("PRAGMA cache_size = -8192; PRAGMA threads = 0")
        try writer.write { db in try Self.finishDeferredIndexing(in: db) }
        if builtBeside { return .beside }
        return waitingForFTS == nil ? .none : .inPlace
    }

    /// How `finishDeferredIndexing` built the FTS index.
    enum FTSBuild: Equatable {
        /// Nothing waited for it.
        case none
        /// On the writer, after the B-tree indexes.
        case inPlace
        /// On a second connection, beside the B-tree indexes (`FTSBuildBeside`).
        case beside
    }

    /// Defers the FTS indexing of rows inserted from now on and drops the secondary indexes,
    /// committed with the caller's transaction.
    ///
    /// It drops the FTS insert trigger too: standing aside row after row still costs SQLite a
    /// trigger frame and a lookup of the flag, a quarter of an imported row's insert. The rows it
    /// would have indexed at once are those inserted below the flag's row_id (a row_id freed at
    /// the top and taken again); the end of the load finds them by count and rebuilds the index.
    static func beginBulkLoad(in db: Database, pulling: Bool = false) throws {
        try deferFTS(in: db)
        for index in pulling ? MirrorSchema.droppedByPulls : MirrorSchema.deferrableIndexes {
            try db.execute(sql: "DROP INDEX IF EXISTS \(index.name)")
        }
        try db.execute(sql: "DROP TRIGGER IF EXISTS contacts_fts_insert")
        try setSyncState(.indexesDeferred, to: "1", in: db)
    }

    /// Whether a load left indexing to finish (it was killed, or is running in another process).
    package func hasDeferredIndexing() throws -> Bool {
        try writer.read { db in try Self.hasDeferredIndexing(in: db) }
    }

    /// Finishes the indexing of a load that was killed part-way, unless another process holds
    /// the mirror (its load may still be running).
    func finishInterruptedLoad(onFinishing: () -> Void) throws {
        guard try hasDeferredIndexing(), let lock = try? MirrorLock.acquire(self, purpose: "intercom-sync indexing")
        else { return }
        onFinishing()
        try withExtendedLifetime(lock) { _ = try finishDeferredIndexing() }
    }

    /// For a writer that has just taken the `MirrorLock`: finishes indexing a killed load left,
    /// which the open could not finish because another process held the mirror then.
    func finishDeferredIndexingLeftBehind() throws {
        if try hasDeferredIndexing() { try finishDeferredIndexing() }
    }

    static func hasDeferredIndexing(in db: Database) throws -> Bool {
        try Bool.fetchOne(db, sql: deferredIndexingSQL) ?? false
    }

    /// Whether a load left indexes or full-text entries to build.
    static let deferredIndexingSQL = """
        SELECT count(*) > 0 FROM sync_state WHERE key IN ('\(SyncStateKey.ftsDeferred.rawValue)', \
        '\(SyncStateKey.indexesDeferred.rawValue)')
        """

    /// Runs `body`, which writes contacts inside the caller's transaction, and indexes the rows
    /// it inserted with one statement at the end: FTS5 flushes its pending terms at every
    /// statement, so indexing row by row costs several times more. Inside a bulk load, the load
    /// indexes them at its end instead.
    ///
    /// No savepoint: inside a transaction SQLite would copy the original of every page the batch
    /// touches to a statement journal, which for a bulk import wrote ten times the mirror's size.
    /// If `body` throws, the rows it inserted are indexed and the flag cleared before the error
    /// goes on, so the FTS index stays exact even if the caller commits anyway.
    static func indexingFTSAtEnd<T>(in db: Database, _ body: () throws -> T) throws -> T {
        guard try deferFTS(in: db) else { return try body() }
        let result: T
        do {
            result = try body()
        } catch {
            try? finishDeferredIndexing(in: db)
            throw error
        }
        try finishDeferredIndexing(in: db)
        return result
    }

    /// Sets `fts.deferred` to the highest row_id now indexed; false when it is already set.
    @discardableResult
    private static func deferFTS(in db: Database) throws -> Bool {
        guard try syncState(.ftsDeferred, in: db) == nil else { return false }
        let lastRowID = try Int64.fetchOne(db, sql: "SELECT ifnull(max(row_id), 0) FROM contacts") ?? 0
        try setSyncState(.ftsDeferred, to: String(lastRowID), in: db)
        return true
    }

    /// Builds what a load deferred (the dropped indexes, the FTS entries of the rows above the
    /// flag's row_id) and clears the flags, in the caller's transaction.
    static func finishDeferredIndexing(in db: Database) throws {
        if try syncState(.indexesDeferred, in: db) != nil {
            for index in MirrorSchema.deferrableIndexes { try db.execute(sql: index.sql) }
            try quietlyMovingLinks(in: db) { try mergeLoadedLinks(in: db) }
            try setSyncState(.indexesDeferred, to: nil, in: db)
        }
        if let deferred = try syncState(.ftsDeferred, in: db) {
            // FTS5 merges its segments as it writes them; a million rows written at once merge
            // better later, in the small merges each later write does. Leaves of 8,000 bytes
            // rather than 4,050 halve their count. Together a third off the build, for about 30 us
            // more on a search (50-60 us at a million contacts) until later merges rewrite them.
            // The settings commit with the rows, and go back to the defaults after them.
            try db.execute(
                sql: """
                    INSERT INTO contacts_fts (contacts_fts, rank) VALUES ('automerge', 0);
                    INSERT INTO contacts_fts (contacts_fts, rank) VALUES ('pgsz', 8000);
                    INSERT INTO contacts_fts (rowid, name, email, phone)
                    SELECT row_id, name, email, phone FROM contacts WHERE row_id > ?;
                    INSERT INTO contacts_fts (contacts_fts, rank) VALUES ('automerge', 4);
                    INSERT INTO contacts_fts (contacts_fts, rank) VALUES ('pgsz', 4050);
                    """, arguments: [Int64(deferred) ?? 0])
            if try !hasFTSInsertTrigger(in: db) {
                if try !indexHoldsEveryRow(upTo: Int64(deferred) ?? 0, in: db) {
                    try db.execute(sql: "INSERT INTO contacts_fts (contacts_fts) VALUES ('rebuild')")
                }
                try db.execute(sql: MirrorSchema.ftsInsertTrigger())
            }
            try setSyncState(.ftsDeferred, to: nil, in: db)
            try setSyncState(.ftsRewrites, to: nil, in: db)
        }
    }

    static func hasFTSInsertTrigger(in db: Database) throws -> Bool {
        try Bool.fetchOne(
            db, sql: "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'trigger' AND name = 'contacts_fts_insert'")
            ?? false
    }

    /// Whether the FTS index holds an entry for every contact up to `rowID`, as it does unless a
    /// contact was inserted there while the insert trigger was dropped: deletes and updates kept
    /// their triggers, so the counts differ exactly then. (The rows up to the flag's row_id are
    /// those the mirror held when the load began: at most half of it. FTS5 keeps one row of
    /// document sizes for each entry.)
    static func indexHoldsEveryRow(upTo rowID: Int64, in db: Database) throws -> Bool {
        let contacts = try Int.fetchOne(db, sql: "SELECT count(*) FROM contacts WHERE row_id <= ?", arguments: [rowID])
        let indexed = try Int.fetchOne(
            db, sql: "SELECT count(*) FROM contacts_fts_docsize WHERE id <= ?", arguments: [rowID])
        return contacts == indexed
    }
}
