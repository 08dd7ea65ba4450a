import GRDB

/// Where the full pull in progress stands: one record (its keys in `sync_state`), read whole
/// and changed whole inside one transaction, so that no step of a pull sees half of another's.
struct FullPullProgress: Sendable, Equatable {
    /// When it began (the mirror's clock).
    var startedAt: Int
    /// The list walk's cursor after its last committed page (a walk of one cursor).
    var listCursor: String?
    /// Every page or range is walked: what is left is to prove the unseen gone.
    var walked = false
    /// The workspace's newest update when the walk began, by the server's clock.
    var newestAtStart: Int?
    /// The mirror held no synced contact fetched before the pull began, so none can be left
    /// unseen: the walk marks nothing seen and proves nothing gone.
    var noneOlder = false
    /// Found in progress, left by an earlier run.
    var resumed = false

    private static let keys: [SyncStateKey] = [
        .fullPullStartedAt, .fullPullCursor, .fullPullWalked, .fullPullNewestAtStart, .fullPullNoneOlder,
    ]

    /// The record as `sync_state` keeps it: each key's value, nil for a key it leaves out.
    private var stored: [SyncStateKey: String?] {
        [
            .fullPullStartedAt: String(startedAt), .fullPullCursor: listCursor, .fullPullWalked: walked ? "1" : nil,
            .fullPullNewestAtStart: newestAtStart.map(String.init), .fullPullNoneOlder: noneOlder ? "1" : nil,
        ]
    }

    /// The pull in progress, if any.
    static func read(in db: Database) throws -> FullPullProgress? {
        let values = try ContactMirror.syncStates(keys, in: db)
        guard let started = values[.fullPullStartedAt].flatMap(Int.init) else { return nil }
        return FullPullProgress(
            startedAt: started, listCursor: values[.fullPullCursor], walked: values[.fullPullWalked] != nil,
            newestAtStart: values[.fullPullNewestAtStart].flatMap(Int.init),
            noneOlder: values[.fullPullNoneOlder] != nil, resumed: true)
    }

    /// Records `progress` whole, or with nil that no pull is in progress.
    static func write(_ progress: FullPullProgress?, in db: Database) throws {
        try write(progress, over: nil, in: db)
    }

    /// Reads the pull in progress, changes it, and writes back the keys whose values changed
    /// (a page's commit moves the cursor alone), all in the caller's transaction. Nil when no
    /// pull is in progress.
    static func update(in db: Database, _ change: (inout FullPullProgress) throws -> Void) throws -> FullPullProgress? {
        guard let old = try read(in: db) else { return nil }
        var progress = old
        try change(&progress)
        try write(progress, over: old, in: db)
        return progress
    }

    /// `progress` written over `old`, the record as read in the same transaction: only the
    /// keys whose values differ are written (every key when `old` is nil).
    private static func write(_ progress: FullPullProgress?, over old: FullPullProgress?, in db: Database) throws {
        guard let progress else {
            for key in keys { try ContactMirror.setSyncState(key, to: nil, in: db) }
            return
        }
        let before = old?.stored
        for (key, value) in progress.stored where before?[key] != value {
            try ContactMirror.setSyncState(key, to: value, in: db)
        }
    }
}

/// Where the incremental pass in progress stands, read and written whole.
struct IncrementalProgress: Sendable, Equatable {
    /// The pass's `updated_at >` bound.
    var floor: Int
    /// The cursor after its last committed page (a pass of one cursor).
    var cursor: String?
    /// The `total_count` search reported with that page.
    var lastTotal: Int?
    /// Found in progress, left by an earlier run.
    var resumed = false

    static func read(in db: Database) throws -> IncrementalProgress? {
        let values = try ContactMirror.syncStates(
            [.incrementalFloor, .incrementalCursor, .incrementalLastTotal], in: db)
        guard let floor = values[.incrementalFloor].flatMap(Int.init) else { return nil }
        return IncrementalProgress(
            floor: floor, cursor: values[.incrementalCursor], lastTotal: values[.incrementalLastTotal].flatMap(Int.init),
            resumed: true)
    }

    static func write(_ progress: IncrementalProgress?, in db: Database) throws {
        try ContactMirror.setSyncState(.incrementalFloor, to: progress.map { String($0.floor) }, in: db)
        try ContactMirror.setSyncState(.incrementalCursor, to: progress?.cursor, in: db)
        try ContactMirror.setSyncState(.incrementalLastTotal, to: progress?.lastTotal.map(String.init), in: db)
    }
}

/// What a page's commit stored: how many contacts it wrote, and those it left out because the
/// mirror cannot store them (the rest of the page is stored all the same).
struct PageCommit: Sendable {
    var written: Int
    var malformed: [MalformedContact]
}

/// The writes of the pulls, each one transaction that leaves the mirror consistent: a page and
/// the cursor after it commit together, so a killed pull resumes where it stopped.
extension ContactMirror {
    /// A full walk that would tombstone more than this share of the synced contacts (and more
    /// than `massDeleteFloor` of them), or every one of them, stops before committing it. An
    /// empty or foreign answer looks exactly like a workspace whose contacts were all deleted;
    /// real deletions of that size are rare enough to be confirmed by hand.
    static let massDeleteShare = 0.2
    static let massDeleteFloor = 10

    // MARK: Full pulls

    /// The full pull in progress, which the caller began: its record gone means another process
    /// finished or reset it meanwhile, and this one must not write as if it had not.
    private static func fullPullInProgress(in db: Database) throws -> FullPullProgress {
        guard let progress = try FullPullProgress.read(in: db) else { throw progressLost("full pull") }
        return progress
    }

    /// Changes the full pull in progress; fails when there is none (another process ended it).
    private static func updateFullPullInProgress(in db: Database, _ change: (inout FullPullProgress) -> Void) throws {
        guard try FullPullProgress.update(in: db, change) != nil else { throw progressLost("full pull") }
    }

    private static func progressLost(_ pull: String) -> SyncError {
        SyncError(
            .notReady,
            "the mirror no longer records the \(pull) in progress (another process ended it); nothing "
                + "more was written", remedy: .tryLater)
    }

    /// Starts a full pull at `time`, or returns the one a killed process left (`resumed`).
    func beginFullPull(at time: Int) async throws -> FullPullProgress {
        try await writer.write { db in
            if let progress = try FullPullProgress.read(in: db) { return progress }
            // Stops at the first synced contact: at most one scan, of a mirror whose every
            // contact was fetched after `time`.
            let older =
                try Bool.fetchOne(
                    db,
                    sql: "SELECT EXISTS (SELECT 1 FROM contacts WHERE state = 'synced' AND ifnull(fetched_at, 0) < ?)",
                    arguments: [time]) ?? true
            let generation = (try Self.syncState(.fullPullGeneration, in: db).flatMap(Int.init) ?? 0) + 1
            try Self.setSyncState(.fullPullGeneration, to: String(generation), in: db)
            let progress = FullPullProgress(startedAt: time, noneOlder: !older)
            try FullPullProgress.write(progress, in: db)
            try PullRange.save([], in: db)
            try Self.clearSeen(in: db)
            return progress
        }
    }

    /// The full pull in progress, if any.
    func fullPullProgress() throws -> FullPullProgress? {
        try writer.read { db in try FullPullProgress.read(in: db) }
    }

    /// Records the plan of a full pull about to walk: its ranges (none for a list walk) and the
    /// workspace's newest update when it began.
    func planFullPull(_ ranges: [PullRange], newestAtStart: Int?) async throws {
        try await writer.write { db in
            try Self.updateFullPullInProgress(in: db) { $0.newestAtStart = newestAtStart }
            try PullRange.save(ranges, in: db)
        }
    }

    /// Commits a page of a list walk with the cursor after it.
    func commitListPage(_ page: ScannedPage, fetchedAt: Int, markingSeen: Bool, next: String?) async throws -> PageCommit {
        try await writer.write { db in
            let malformed = MalformedContacts()
            let written = try Self.upsert(page: page, fetchedAt: fetchedAt, skipping: malformed, in: db)
            if markingSeen { try Self.markSeen(page, fetchedAt: fetchedAt, in: db) }
            try Self.updateFullPullInProgress(in: db) { $0.listCursor = next }
            return PageCommit(written: written, malformed: malformed.contacts)
        }
    }

    /// Records that the full pull in progress walked every page or range.
    func markFullPullWalked() async throws {
        try await writer.write { db in
            try Self.updateFullPullInProgress(in: db) { $0.walked = true }
        }
    }

    /// The contacts the mirror holds, tombstones aside; read on the writer's connection.
    func liveContactCount() async throws -> Int {
        try await writer.writeWithoutTransaction { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM contacts WHERE state != 'tombstoned'") ?? 0
        }
    }

    /// Up to `limit` synced contacts the full pull begun at `startedAt` has not seen, after
    /// `after` by id. On the writer's connection: a reader maps the file, and this scan of every
    /// contact would count the whole mirror in the process's resident memory.
    func unseenIDs(pullStartedAt startedAt: Int, after: String, limit: Int) async throws -> [String] {
        try await writer.writeWithoutTransaction { db in
            try Self.unseenIDs(pullStartedAt: startedAt, after: after, limit: limit, in: db)
        }
    }

    /// Stores a contact a `GET` proved alive, and marks it (by the id asked and the id it
    /// answers with) seen by the pull in progress.
    func storeProvenAlive(_ contactJSON: String, asked id: String, etag: String?, fetchedAt: Int) async throws {
        try await writer.write { db in
            do {
                let stored = try Self.storeFetched(contactJSON, etag: etag, fetchedAt: fetchedAt, in: db)
                try Self.markSeen(ids: [id, stored], in: db)
            } catch let error as MirrorError where error.kind == .malformedResponse {
                // Alive, though the mirror cannot store this answer: seen, so never tombstoned.
                // (The failed statement alone is undone: the transaction goes on.)
                try Self.markSeen(ids: [id], in: db)
            }
        }
    }

    /// Throws `SyncError.massDelete` when the walk begun at `startedAt` would tombstone an
    /// implausible share of the mirror (`massDeleteShare`); nothing is tombstoned.
    func checkDeletionShare(pullStartedAt startedAt: Int) async throws {
        try await writer.writeWithoutTransaction { db in
            try Self.checkDeletionShare(doomed: Self.unseenCount(pullStartedAt: startedAt, in: db), in: db)
        }
    }

    /// The same check for `doomed` contacts about to be proven and tombstoned.
    func checkDeletionShare(doomed: Int) async throws {
        try await writer.writeWithoutTransaction { db in try Self.checkDeletionShare(doomed: doomed, in: db) }
    }

    private static func checkDeletionShare(doomed: Int, in db: Database) throws {
        guard doomed > 0 else { return }
        let synced = try Int.fetchOne(db, sql: "SELECT count(*) FROM contacts WHERE state = 'synced'") ?? 0
        let share = Double(doomed) / Double(max(synced, 1))
        guard doomed == synced || (doomed > massDeleteFloor && share > massDeleteShare) else { return }
        throw SyncError(
            .massDelete,
            "the walk found \(synced - doomed) of the mirror's \(synced) contacts, so it would tombstone \(doomed) "
                + String(format: "(%.0f%%)", share * 100)
                + ". Stopped before tombstoning any: an empty or wrong answer from the server looks just like this",
            remedy: .allowMassDelete)
    }

    /// The walk is complete and the unseen are proven gone: tombstones them, and sets where the
    /// next incremental pull starts. That is the workspace's newest update when the walk began:
    /// an edit made while it ran may sit behind a page already walked. A catch-up pass
    /// (`caughtUp`) has set the watermark itself, from what it pulled. Without either (a server
    /// that would not say), the newest update the mirror holds. (The share was checked before
    /// the proof, which only ever finds more contacts alive.) Returns how many it tombstoned.
    func finishFullPull(at now: Int, caughtUp: Bool) async throws -> Int {
        try await writer.write { db in
            let progress = try Self.fullPullInProgress(in: db)
            let tombstoned =
                progress.noneOlder ? 0 : try Self.tombstoneUnseen(pullStartedAt: progress.startedAt, now: now, in: db)
            let stored = try Self.syncState(.incrementalWatermark, in: db).flatMap(Int.init)
            if caughtUp {
                // Set by the catch-up pass.
            } else if let newestAtStart = progress.newestAtStart {
                try Self.setSyncState(.incrementalWatermark, to: String(newestAtStart), in: db)
            } else if let newest = try Self.newestUpdate(in: db) {
                try Self.setSyncState(.incrementalWatermark, to: String(max(stored ?? newest, newest)), in: db)
            }
            try FullPullProgress.write(nil, in: db)
            try PullRange.save([], in: db)
            try Self.clearSeen(in: db)
            try Self.setSyncState(.lastFullPullAt, to: String(now), in: db)
            return tombstoned
        }
    }

    // MARK: Ranges

    /// The ranges of the pull or pass in progress.
    func pullRanges(_ table: PullRange.Table = .fullPull) async throws -> [PullRange] {
        try await writer.read { db in try PullRange.fetchAll(db, table: table) }
    }

    /// Commits a page of a range with the range's progress: the cursor after it (nil to walk the
    /// range again from its start), the total search reported, and whether it was the last.
    /// `markingSeen` marks its contacts seen by the full pull in progress; `notingPassNewest`
    /// keeps the newest update the incremental pass in progress has committed.
    func commitRangePage(
        _ page: ScannedPage, fetchedAt: Int, range seq: Int, next: String?, total: Int?, done: Bool,
        table: PullRange.Table, markingSeen: Bool, notingPassNewest: Bool
    ) async throws -> PageCommit {
        try await writer.write { db in
            let malformed = MalformedContacts()
            let written = try Self.upsert(page: page, fetchedAt: fetchedAt, skipping: malformed, in: db)
            if markingSeen { try Self.markSeen(page, fetchedAt: fetchedAt, in: db) }
            if notingPassNewest { try Self.notePassNewest(page, in: db) }
            try PullRange.advance(
                seq: seq, cursor: next, fetched: page.contacts.count, total: total, done: done, table: table, in: db)
            return PageCommit(written: written, malformed: malformed.contacts)
        }
    }

    /// How many synced contacts the mirror holds in each range, in one scan on the writer's
    /// connection. The ranges are disjoint and cover every second, so each contact belongs to
    /// the last range (by lower bound) that starts at or before it: found by binary search.
    func syncedCounts(in ranges: [PullRange]) async throws -> [Int] {
        try await writer.writeWithoutTransaction { db in
            let order = ranges.indices.sorted { (ranges[$0].lower ?? .min) < (ranges[$1].lower ?? .min) }
            let lowers = order.map { ranges[$0].lower ?? .min }
            var counts = [Int](repeating: 0, count: ranges.count)
            let cursor = try Int.fetchCursor(db, sql: "SELECT created_at FROM contacts WHERE state = 'synced'")
            while let createdAt = try cursor.next() {
                var low = 0
                var high = lowers.count
                while low < high {
                    let middle = (low + high) / 2
                    if lowers[middle] <= createdAt { low = middle + 1 } else { high = middle }
                }
                if low > 0 { counts[order[low - 1]] += 1 }
            }
            return counts
        }
    }

    /// Commits a page of a range walked again, its contacts marked seen.
    func commitRewalkPage(_ page: ScannedPage, fetchedAt: Int) async throws -> PageCommit {
        try await writer.write { db in
            let malformed = MalformedContacts()
            let written = try Self.upsert(page: page, fetchedAt: fetchedAt, skipping: malformed, in: db)
            try Self.markSeen(page, fetchedAt: fetchedAt, in: db)
            return PageCommit(written: written, malformed: malformed.contacts)
        }
    }

    /// The synced contacts created in `lower..<upper` that were fetched before `time`: those a
    /// walk of the range begun at `time` had to see.
    func syncedIDs(createdIn lower: Int?, _ upper: Int?, fetchedBefore time: Int) async throws -> [String] {
        try await writer.writeWithoutTransaction { db in
            try String.fetchAll(
                db,
                sql: """
                    SELECT id FROM contacts
                    WHERE state = 'synced' AND ifnull(fetched_at, 0) < ? AND created_at >= ? AND created_at < ?
                    """, arguments: [time, lower ?? .min, upper ?? .max])
        }
    }

    /// Tombstones the contacts a `GET` each proved gone; returns how many changed.
    func tombstone(proven ids: [String], at time: Int) async throws -> Int {
        try await writer.write { db in
            var count = 0
            for id in ids {
                try Self.tombstone(id: id, at: time, in: db)
                count += db.changesCount
            }
            return count
        }
    }

    // MARK: Incremental passes

    /// Starts a pass from `floor` (nil: `margin` below the watermark), or returns the one a
    /// killed process left.
    func beginIncrementalPass(from floor: Int?, margin: Int) async throws -> IncrementalProgress {
        try await writer.write { db in
            if let progress = try IncrementalProgress.read(in: db) { return progress }
            let watermark = try Self.syncState(.incrementalWatermark, in: db).flatMap(Int.init)
            guard let floor = floor ?? watermark.map({ $0 - margin }) else {
                throw SyncError(.notReady, "no incremental watermark yet", remedy: .fullSync)
            }
            let progress = IncrementalProgress(floor: floor)
            try IncrementalProgress.write(progress, in: db)
            return progress
        }
    }

    /// Records the ranges of the pass in progress.
    func planIncrementalPass(_ ranges: [PullRange]) async throws {
        try await writer.write { db in try PullRange.save(ranges, table: .incremental, in: db) }
    }

    /// Commits a page of a pass of one cursor; its last page (`next` nil) finishes the pass.
    func commitIncrementalPage(
        _ page: ScannedPage, fetchedAt: Int, markingSeen: Bool, next: String?, total: Int?, done: Bool, now: Int
    ) async throws -> PageCommit {
        try await writer.write { db in
            let malformed = MalformedContacts()
            let written = try Self.upsert(page: page, fetchedAt: fetchedAt, skipping: malformed, in: db)
            if markingSeen { try Self.markSeen(page, fetchedAt: fetchedAt, in: db) }
            try Self.notePassNewest(page, in: db)
            if done {
                try Self.finishIncrementalPass(now: now, in: db)
            } else {
                guard var progress = try IncrementalProgress.read(in: db) else {
                    throw Self.progressLost("incremental pass")
                }
                progress.cursor = next
                progress.lastTotal = total
                try IncrementalProgress.write(progress, in: db)
            }
            return PageCommit(written: written, malformed: malformed.contacts)
        }
    }

    /// Finishes the pass in progress: the watermark moves up to the newest update it saw.
    func finishIncrementalPass(at now: Int) async throws {
        try await writer.write { db in try Self.finishIncrementalPass(now: now, in: db) }
    }

    /// The watermark an incremental pass starts below.
    func incrementalWatermark() throws -> Int? {
        try syncState(.incrementalWatermark).flatMap(Int.init)
    }

    /// Keeps the newest `updated_at` the pass in progress has committed.
    private static func notePassNewest(_ page: ScannedPage, in db: Database) throws {
        let pageNewest = page.contacts.compactMap(\.updatedAt).max()
        let passNewest = try syncState(.incrementalPassNewest, in: db).flatMap(Int.init)
        let newest = [pageNewest, passNewest].compactMap { $0 }.max()
        try setSyncState(.incrementalPassNewest, to: newest.map(String.init), in: db)
    }

    private static func finishIncrementalPass(now: Int, in db: Database) throws {
        let newest = try syncState(.incrementalPassNewest, in: db).flatMap(Int.init)
        let watermark = try syncState(.incrementalWatermark, in: db).flatMap(Int.init)
        let advanced = [watermark, newest].compactMap { $0 }.max()
        try setSyncState(.incrementalWatermark, to: advanced.map(String.init), in: db)
        try IncrementalProgress.write(nil, in: db)
        try setSyncState(.incrementalPassNewest, to: nil, in: db)
        try setSyncState(.lastIncrementalPullAt, to: String(now), in: db)
        try PullRange.save([], table: .incremental, in: db)
    }

    // MARK: Single contacts

    /// Records that the server confirmed the stored version of a contact at `time` (a 304).
    func markValidated(id: String, at time: Int) async throws {
        try await writer.write { db in try Self.markValidated(id: id, at: time, in: db) }
    }

    /// Tombstones one contact the server answered 404 or 410 for.
    func tombstone(id: String, at time: Int) async throws {
        try await writer.write { db in try Self.tombstone(id: id, at: time, in: db) }
    }

    /// Stores a contact as `GET` answered it; returns the id it is stored under.
    func storeFetched(_ contactJSON: String, etag: String?, fetchedAt: Int) async throws -> String {
        try await writer.write { db in try Self.storeFetched(contactJSON, etag: etag, fetchedAt: fetchedAt, in: db) }
    }

    /// The compressor bodies are written with now, if the mirror has trained one.
    func currentBodyCompressor() async throws -> BodyCompressor? {
        try await writer.read { db in try BodyDictionaries.current(in: db) }
    }
}
