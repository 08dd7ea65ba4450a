import Foundation
import GRDB

extension ContactSync {
    /// When the full pull in progress began, the cursor it stopped at, and whether it was found
    /// interrupted.
    typealias FullPullStart = (startedAt: Int, cursor: String?, resumed: Bool)

    /// Walks `GET /contacts` at 150 a page. Each page and the cursor after it commit in one
    /// transaction, so a killed pull resumes where it stopped; the next page is fetched while the
    /// current one is written. A complete walk tombstones the synced contacts it did not see.
    func fullPull(
        into summary: inout SyncSummary, allowMassDelete: Bool = false, progress: (@Sendable (SyncProgress) -> Void)?
    ) async throws {
        summary.passes.append(.full)
        let start = try await mirror.writer.write { [now] db in
            try Self.startFullPull(at: now(), in: db)
        }
        summary.resumed = summary.resumed || start.resumed
        var inFlight = Task { try await fetchListPage(after: start.cursor) }
        defer { inFlight.cancel() }
        var first: FetchedPage
        do {
            first = try await inFlight.value
        } catch let error as IntercomError where start.cursor != nil && error.kind == .permanent {
            // Intercom no longer accepts the saved cursor: walk again from the first page. The
            // contacts already marked seen were seen in this pull, so the result is the same.
            inFlight = Task { try await fetchListPage(after: nil) }
            first = try await inFlight.value
        }
        let held = try await mirror.writer.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM contacts WHERE state != 'tombstoned'") ?? 0
        }
        let total = first.page.totalCount ?? 0
        guard total >= bulkLoadFrom && 2 * held < total else {
            return try await walk(
                from: first, start: start, allowMassDelete: allowMassDelete, into: &summary, progress: progress)
        }
        summary.deferredIndexing = true
        try await mirror.bulkLoading(
            beforeIndexing: {
                progress?(SyncProgress(pass: .full, fetched: total, total: total, indexing: true))
            },
            {
                try await walk(
                    from: first, start: start, allowMassDelete: allowMassDelete, into: &summary, progress: progress)
            })
    }

    /// Commits `first` and every page after it, one transaction a page, fetching each next page
    /// while the current one is written.
    private func walk(
        from first: FetchedPage, start: FullPullStart, allowMassDelete: Bool, into summary: inout SyncSummary,
        progress: (@Sendable (SyncProgress) -> Void)?
    ) async throws {
        var fetched = 0
        var inFlight: Task<FetchedPage, any Error>?
        defer { inFlight?.cancel() }
        var current = first
        while true {
            let next = current.page.nextCursor
            if let next {
                inFlight = Task { try await fetchListPage(after: next) }
            }
            let page = current
            let result = try await mirror.writer.write { [now] db in
                let written = try ContactMirror.upsert(page: page.page, fetchedAt: page.fetchedAt, in: db)
                try ContactMirror.markSeen(page.page, in: db)
                try ContactMirror.setSyncState(.fullPullCursor, to: next, in: db)
                let tombstoned =
                    next == nil
                    ? try Self.finishFullPull(
                        startedAt: start.startedAt, now: now(), allowMassDelete: allowMassDelete, in: db) : 0
                return (written, tombstoned)
            }
            fetched += page.page.contacts.count
            summary.fetched += page.page.contacts.count
            summary.written += result.0
            summary.tombstoned += result.1
            progress?(SyncProgress(pass: .full, fetched: fetched, total: page.page.totalCount))
            guard next != nil, let inFlight else { return }
            try Task.checkCancellation()
            current = try await inFlight.value
        }
    }

    private func fetchListPage(after cursor: String?) async throws -> FetchedPage {
        var query = [("per_page", String(Self.pageSize))]
        if let cursor { query.append(("starting_after", cursor)) }
        return try await fetchPage("GET", "/contacts", query: query)
    }

    /// Starts a full pull, or finds the one a killed process left.
    private static func startFullPull(at time: Int, in db: Database) throws -> FullPullStart {
        if let started = try ContactMirror.syncState(.fullPullStartedAt, in: db).flatMap(Int.init) {
            return (started, try ContactMirror.syncState(.fullPullCursor, in: db), true)
        }
        let generation = (try ContactMirror.syncState(.fullPullGeneration, in: db).flatMap(Int.init) ?? 0) + 1
        try ContactMirror.setSyncState(.fullPullGeneration, to: String(generation), in: db)
        try ContactMirror.setSyncState(.fullPullStartedAt, to: String(time), in: db)
        try ContactMirror.setSyncState(.fullPullCursor, to: nil, in: db)
        try ContactMirror.clearSeen(in: db)
        return (time, nil, false)
    }

    /// Throws `SyncError.massDelete` when the walk would tombstone an implausible share of the
    /// mirror (`massDeleteShare`); the caller's transaction, and so the walk's last page, then
    /// rolls back, and the next sync walks that page again.
    private static func checkDeletionShare(pullStartedAt: Int, in db: Database) throws {
        let doomed = try ContactMirror.unseenCount(pullStartedAt: pullStartedAt, in: db)
        guard doomed > 0 else { return }
        let synced = try Int.fetchOne(db, sql: "SELECT count(*) FROM contacts WHERE state = 'synced'") ?? 0
        let share = Double(doomed) / Double(max(synced, 1))
        guard doomed == synced || (doomed > massDeleteFloor && share > massDeleteShare) else { return }
        throw SyncError(
            .massDelete,
            "the walk found \(synced - doomed) of the mirror's \(synced) contacts, so it would tombstone \(doomed) "
                + String(format: "(%.0f%%)", share * 100)
                + ". Stopped before tombstoning any: an empty or wrong answer from the server looks just like this. "
                + "If that many contacts really were deleted on Intercom, run the sync again with --allow-mass-delete")
    }

    /// The walk is complete: tombstone what it did not see, and start incremental pulls from
    /// the newest update it saw.
    private static func finishFullPull(startedAt: Int, now: Int, allowMassDelete: Bool, in db: Database) throws -> Int {
        if !allowMassDelete { try checkDeletionShare(pullStartedAt: startedAt, in: db) }
        let tombstoned = try ContactMirror.tombstoneUnseen(pullStartedAt: startedAt, now: now, in: db)
        let stored = try ContactMirror.syncState(.incrementalWatermark, in: db).flatMap(Int.init)
        if let newest = try ContactMirror.newestUpdate(in: db) {
            try ContactMirror.setSyncState(.incrementalWatermark, to: String(max(stored ?? newest, newest)), in: db)
        }
        try ContactMirror.setSyncState(.fullPullStartedAt, to: nil, in: db)
        try ContactMirror.setSyncState(.lastFullPullAt, to: String(now), in: db)
        return tombstoned
    }
}
