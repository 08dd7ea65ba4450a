import Foundation
import GRDB

extension ContactSync {
    /// When the full pull in progress began, the list cursor it stopped at, whether it was
    /// found interrupted, whether it had already walked everything, and whether the mirror held
    /// no synced contact fetched before it began (`SyncStateKey.fullPullNoneOlder`).
    typealias FullPullStart = (startedAt: Int, cursor: String?, resumed: Bool, walked: Bool, noneOlder: Bool)

    /// Walks every contact, then proves the unseen ones gone and tombstones them.
    ///
    /// With `concurrency` above 1 the walk is partitioned (`partitionedWalk`): ranges of
    /// `created_at` walked by search, several at once. With 1, or where search cannot serve, it
    /// walks `GET /contacts` at 150 a page, one cursor. Either way each page commits with its
    /// cursor, so a killed pull resumes where it stopped, and the synced contacts the walk did
    /// not see are tombstoned only once a `GET` of each answers 404 or 410 (`proveUnseen`).
    func fullPull(
        into summary: inout SyncSummary, allowMassDelete: Bool = false, opening: Task<PlanOpening, any Error>? = nil,
        progress: (@Sendable (SyncProgress) -> Void)?
    ) async throws {
        summary.passes.append(.full)
        let start = try await mirror.writer.write { [now] db in
            try Self.startFullPull(at: now(), in: db)
        }
        summary.resumed = summary.resumed || start.resumed
        if !start.walked {
            try await walkEverything(start: start, opening: opening, into: &summary, progress: progress)
        }
        let newestAtStart = try mirror.syncState(.fullPullNewestAtStart).flatMap(Int.init)
        var caughtUp = false
        if start.resumed {
            // The walk began in an earlier run, maybe days ago: pages walked then miss what changed
            // since. The edits are caught up by an incremental pass from the walk's beginning;
            // the deletions are found range by range, by count, and re-walked (`recheck`).
            if let newestAtStart {
                try await incrementalPull(
                    into: &summary, progress: progress, catchingUp: newestAtStart - Self.incrementalMargin)
                caughtUp = true
            }
            try await recheck(into: &summary, allowMassDelete: allowMassDelete)
        }
        if !start.noneOlder {
            try await proveUnseen(startedAt: start.startedAt, allowMassDelete: allowMassDelete, into: &summary)
        }
        let tombstoned = try await mirror.writer.write { [now, caughtUp] db in
            try Self.finishFullPull(
                startedAt: start.startedAt, now: now(), caughtUp: caughtUp, lookingForUnseen: !start.noneOlder, in: db)
        }
        summary.tombstoned += tombstoned
    }

    /// Walks the workspace, partitioned when it can be, and marks the walk done.
    private func walkEverything(
        start: FullPullStart, opening: Task<PlanOpening, any Error>?, into summary: inout SyncSummary,
        progress: (@Sendable (SyncProgress) -> Void)?
    ) async throws {
        var ranges = try await mirror.writer.read { db in try PullRange.fetchAll(db) }
        let beginning = ranges.isEmpty && start.cursor == nil
        // Before its first page, a walk records the workspace's newest update (`newestUpdateNow`),
        // asked alongside its plan's first requests so that it costs no round trip of its own.
        var newestAtStart: Int?
        var firstPages: [Int: FetchedPage] = [:]
        if beginning && concurrency > 1 {
            let opened: PlanOpening
            if let opening { opened = try await opening.value } else { opened = try await openPlan() }
            newestAtStart = opened.newestUpdate
            let planned = try await planRanges(from: opened)
            summary.planRequests = planned.requests
            switch planned.outcome {
            case .ranges(let planned, let pages):
                ranges = planned
                firstPages = pages
                summary.plannedPages = pages.count
            case .fallback(let reason):
                summary.fallback = reason
            }
        }
        if beginning {
            if concurrency == 1 {
                summary.planRequests += 1
                newestAtStart = try await newestUpdateNow()
            }
            try await mirror.writer.write { [ranges, newestAtStart] db in
                try PullRange.save(ranges, in: db)
                try ContactMirror.setSyncState(.fullPullNewestAtStart, to: newestAtStart.map(String.init), in: db)
            }
        }
        let held = try await mirror.writer.writeWithoutTransaction { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM contacts WHERE state != 'tombstoned'") ?? 0
        }
        if !ranges.isEmpty {
            summary.ranges = ranges.count
            let total = ranges.reduce(0) { $0 + $1.expected }
            let kind = RangeWalk(markingSeen: !start.noneOlder)
            try await deferringIndexes(total: total, held: held, into: &summary, progress: progress) {
                [firstPages] summary in
                try await self.partitionedWalk(
                    ranges, as: kind, firstPages: firstPages, into: &summary, progress: progress)
            }
        } else {
            let first: FetchedPage
            do {
                first = try await fetchListPage(after: start.cursor)
            } catch let error as IntercomError where start.cursor != nil && error.kind == .permanent {
                // Intercom no longer accepts the saved cursor: walk again from the first page.
                // The contacts already marked seen were seen in this pull: the result is the same.
                first = try await fetchListPage(after: nil)
            }
            let total = first.page.totalCount ?? 0
            try await deferringIndexes(total: total, held: held, into: &summary, progress: progress) { summary in
                try await self.listWalk(from: first, markingSeen: !start.noneOlder, into: &summary, progress: progress)
            }
        }
        try await mirror.writer.write { db in
            try ContactMirror.setSyncState(.fullPullWalked, to: "1", in: db)
        }
    }

    /// Runs `walk` with the indexes deferred to its end when it is a first pull of a large
    /// workspace: at least `bulkLoadFrom` contacts into a mirror holding fewer than half as many.
    private func deferringIndexes(
        total: Int, held: Int, into summary: inout SyncSummary, progress: (@Sendable (SyncProgress) -> Void)?,
        _ walk: (inout SyncSummary) async throws -> Void
    ) async throws {
        guard total >= bulkLoadFrom && 2 * held < total else { return try await walk(&summary) }
        summary.deferredIndexing = true
        try await mirror.bulkLoading(
            beforeIndexing: {
                progress?(SyncProgress(pass: .full, fetched: total, total: total, indexing: true))
            },
            { try await walk(&summary) })
    }

    /// Commits `first` and every list page after it, one transaction a page, fetching each next
    /// page while the current one is written.
    private func listWalk(
        from first: FetchedPage, markingSeen: Bool, into summary: inout SyncSummary, progress: (@Sendable (SyncProgress) -> Void)?
    ) async throws {
        var fetched = 0
        var inFlight: Task<FetchedPage, any Error>?
        defer { inFlight?.cancel() }
        var current = first
        var walk = CursorGuard("GET /contacts")
        while true {
            let next = current.page.nextCursor
            try walk.check(next: next, ids: current.page.contacts.compactMap(\.id), total: current.page.totalCount)
            if let next {
                inFlight = Task { try await fetchListPage(after: next) }
            }
            let page = current
            let written = try await mirror.writer.write { db in
                let written = try ContactMirror.upsert(page: page.page, fetchedAt: page.fetchedAt, in: db)
                if markingSeen { try ContactMirror.markSeen(page.page, fetchedAt: page.fetchedAt, in: db) }
                try ContactMirror.setSyncState(.fullPullCursor, to: next, in: db)
                return written
            }
            fetched += page.page.contacts.count
            summary.fetched += page.page.contacts.count
            summary.written += written
            progress?(SyncProgress(pass: .full, fetched: fetched, total: page.page.totalCount))
            guard next != nil, let inFlight else { return }
            try Task.checkCancellation()
            current = try await inFlight.value
        }
    }

    func fetchListPage(after cursor: String?) async throws -> FetchedPage {
        var query = [("per_page", String(Self.pageSize))]
        if let cursor { query.append(("starting_after", cursor)) }
        return try await fetchPage("GET", "/contacts", query: query)
    }

    /// Starts a full pull, or finds the one a killed process left.
    private static func startFullPull(at time: Int, in db: Database) throws -> FullPullStart {
        if let started = try ContactMirror.syncState(.fullPullStartedAt, in: db).flatMap(Int.init) {
            return (
                started, try ContactMirror.syncState(.fullPullCursor, in: db), true,
                try ContactMirror.syncState(.fullPullWalked, in: db) != nil,
                try ContactMirror.syncState(.fullPullNoneOlder, in: db) != nil
            )
        }
        // Stops at the first synced contact: at most one scan, of a mirror whose every contact
        // was fetched after `time`.
        let older =
            try Bool.fetchOne(
                db,
                sql: "SELECT EXISTS (SELECT 1 FROM contacts WHERE state = 'synced' AND ifnull(fetched_at, 0) < ?)",
                arguments: [time]) ?? true
        let generation = (try ContactMirror.syncState(.fullPullGeneration, in: db).flatMap(Int.init) ?? 0) + 1
        try ContactMirror.setSyncState(.fullPullGeneration, to: String(generation), in: db)
        try ContactMirror.setSyncState(.fullPullStartedAt, to: String(time), in: db)
        try ContactMirror.setSyncState(.fullPullCursor, to: nil, in: db)
        try ContactMirror.setSyncState(.fullPullWalked, to: nil, in: db)
        try ContactMirror.setSyncState(.fullPullNewestAtStart, to: nil, in: db)
        try ContactMirror.setSyncState(.fullPullNoneOlder, to: older ? nil : "1", in: db)
        try PullRange.save([], in: db)
        try ContactMirror.clearSeen(in: db)
        return (time, nil, false, false, !older)
    }

    /// Before a contact the walk did not see becomes a tombstone, a `GET` must prove it gone
    /// (404, or 410 for one merged away): search lags, and a contact can be missing from a walk
    /// that still exists. One that answers is stored and counts as seen. The share check runs
    /// first, so an empty or foreign walk costs no `GET` a contact.
    private func proveUnseen(startedAt: Int, allowMassDelete: Bool, into summary: inout SyncSummary) async throws {
        if !allowMassDelete {
            try await mirror.writer.writeWithoutTransaction { db in
                try Self.checkDeletionShare(pullStartedAt: startedAt, in: db)
            }
        }
        var after = ""
        while true {
            // On the writer's connection: a reader maps the file, and this scan of every contact
            // would count the whole mirror in the process's resident memory.
            let ids = try await mirror.writer.writeWithoutTransaction { [after] db in
                try ContactMirror.unseenIDs(pullStartedAt: startedAt, after: after, limit: 500, in: db)
            }
            guard let last = ids.last else { return }
            _ = try await forEachConcurrently(ids) { id in try await self.prove(id) }
            summary.proofRequests += ids.count
            after = last
        }
    }

    /// `GET /contacts/{id}`: true when Intercom says the contact is gone; otherwise stores it.
    func prove(_ id: String) async throws -> Bool {
        let sentAt = now()
        let answer = try await client.sendJSON("GET", "/contacts/\(Self.pathComponent(id))", accepting: [404, 410])
        guard answer.response.status < 300 else { return true }
        try await mirror.writer.write { db in
            let stored = try ContactMirror.storeFetched(
                answer.text, etag: answer.response.header("etag"), fetchedAt: sentAt, in: db)
            try ContactMirror.markSeen(ids: [id, stored], in: db)
        }
        return false
    }

    /// Runs `work` on each item, `concurrency` at a time; the results in the items' order.
    func forEachConcurrently<Item: Sendable, Result: Sendable>(
        _ items: [Item], _ work: @escaping @Sendable (Item) async throws -> Result
    ) async throws -> [Result] {
        try await withThrowingTaskGroup(of: (Int, Result).self) { group in
            var results = [Result?](repeating: nil, count: items.count)
            var next = 0
            for _ in 0..<min(concurrency, items.count) {
                let index = next
                group.addTask { (index, try await work(items[index])) }
                next += 1
            }
            for try await (index, result) in group {
                results[index] = result
                if next < items.count {
                    let index = next
                    group.addTask { (index, try await work(items[index])) }
                    next += 1
                }
            }
            return results.map { $0! }
        }
    }

    /// Throws `SyncError.massDelete` when the walk would tombstone an implausible share of the
    /// mirror (`massDeleteShare`); nothing is tombstoned, and the next sync proves and checks
    /// again.
    private static func checkDeletionShare(pullStartedAt: Int, in db: Database) throws {
        try checkDeletionShare(doomed: ContactMirror.unseenCount(pullStartedAt: pullStartedAt, in: db), in: db)
    }

    /// The same check for `doomed` contacts about to be proven and tombstoned.
    static func checkDeletionShare(doomed: Int, in db: Database) throws {
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

    /// The walk is complete and the unseen are proven gone: tombstone them, and set where the
    /// next incremental pull starts. That is the workspace's newest update when the walk began:
    /// an edit made while it ran may sit behind a page already walked. A catch-up pass
    /// (`caughtUp`) has set the watermark itself, from what it pulled. Without either (a server
    /// that would not say), the newest update the mirror holds. (The share was checked before
    /// the proof, which only ever finds more contacts alive.)
    private static func finishFullPull(
        startedAt: Int, now: Int, caughtUp: Bool, lookingForUnseen: Bool, in db: Database
    ) throws -> Int {
        let tombstoned =
            lookingForUnseen ? try ContactMirror.tombstoneUnseen(pullStartedAt: startedAt, now: now, in: db) : 0
        let stored = try ContactMirror.syncState(.incrementalWatermark, in: db).flatMap(Int.init)
        if caughtUp {
            // Set by the catch-up pass.
        } else if let newestAtStart = try ContactMirror.syncState(.fullPullNewestAtStart, in: db).flatMap(Int.init) {
            try ContactMirror.setSyncState(.incrementalWatermark, to: String(newestAtStart), in: db)
        } else if let newest = try ContactMirror.newestUpdate(in: db) {
            try ContactMirror.setSyncState(.incrementalWatermark, to: String(max(stored ?? newest, newest)), in: db)
        }
        try ContactMirror.setSyncState(.fullPullNewestAtStart, to: nil, in: db)
        try ContactMirror.setSyncState(.fullPullStartedAt, to: nil, in: db)
        try ContactMirror.setSyncState(.fullPullCursor, to: nil, in: db)
        try ContactMirror.setSyncState(.fullPullWalked, to: nil, in: db)
        try ContactMirror.setSyncState(.fullPullNoneOlder, to: nil, in: db)
        try PullRange.save([], in: db)
        try ContactMirror.clearSeen(in: db)
        try ContactMirror.setSyncState(.lastFullPullAt, to: String(now), in: db)
        return tombstoned
    }
}
