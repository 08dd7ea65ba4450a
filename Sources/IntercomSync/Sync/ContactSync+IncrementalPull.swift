import Foundation
import GRDB

extension ContactSync {
    /// Pulls what changed since the watermark with `POST /contacts/search` on `updated_at`,
    /// newest first, from two days below the watermark. Each page commits with the
    /// cursor after it; the watermark moves only when the pass completes. Re-applying a contact
    /// changes nothing, so the overlap costs requests, never correctness.
    ///
    /// Inside a full pull (`catchingUp`), the pass starts from `floor` rather than the watermark
    /// (which a first pull has not set yet), and marks what it pulls as seen by the pull.
    func incrementalPull(
        into summary: inout SyncSummary, progress: (@Sendable (SyncProgress) -> Void)?,
        catchingUp floor: Int? = nil
    ) async throws {
        summary.passes.append(.incremental)
        let start = try await mirror.writer.write { db in try Self.startIncrementalPull(from: floor, in: db) }
        summary.resumed = summary.resumed || start.resumed
        var fetched = 0
        var cursor = start.cursor
        var lastTotal = start.lastTotal
        var restarts = 0
        var inFlight = Task { [cursor] in try await fetchSearchPage(floor: start.floor, after: cursor) }
        defer { inFlight.cancel() }
        while true {
            let current = try await inFlight.value
            let total = current.page.totalCount
            // Shrunk since the last page: a contact left behind the cursor, so this page may have
            // skipped one. Walk again from the newest (the page itself is good).
            let shrank =
                cursor != nil && total != nil && lastTotal != nil && total! < lastTotal!
                && restarts < Self.maximumRangeRestarts
            if shrank { restarts += 1 }
            let next = shrank ? nil : current.page.nextCursor
            let done = next == nil && !shrank
            if !done {
                inFlight = Task { [next] in try await fetchSearchPage(floor: start.floor, after: next) }
            }
            let written = try await mirror.writer.write { [now] db in
                let written = try ContactMirror.upsert(page: current.page, fetchedAt: current.fetchedAt, in: db)
                if floor != nil { try ContactMirror.markSeen(current.page, in: db) }
                let pageNewest = current.page.contacts.compactMap(\.updatedAt).max()
                let passNewest = try ContactMirror.syncState(.incrementalPassNewest, in: db).flatMap(Int.init)
                let newest = [pageNewest, passNewest].compactMap { $0 }.max()
                if done {
                    let watermark = try ContactMirror.syncState(.incrementalWatermark, in: db).flatMap(Int.init)
                    let advanced = [watermark, newest].compactMap { $0 }.max()
                    try ContactMirror.setSyncState(.incrementalWatermark, to: advanced.map(String.init), in: db)
                    try ContactMirror.setSyncState(.incrementalFloor, to: nil, in: db)
                    try ContactMirror.setSyncState(.incrementalCursor, to: nil, in: db)
                    try ContactMirror.setSyncState(.incrementalLastTotal, to: nil, in: db)
                    try ContactMirror.setSyncState(.incrementalPassNewest, to: nil, in: db)
                    try ContactMirror.setSyncState(.lastIncrementalPullAt, to: String(now()), in: db)
                } else {
                    try ContactMirror.setSyncState(.incrementalCursor, to: next, in: db)
                    try ContactMirror.setSyncState(.incrementalLastTotal, to: total.map(String.init), in: db)
                    try ContactMirror.setSyncState(.incrementalPassNewest, to: newest.map(String.init), in: db)
                }
                return written
            }
            fetched += current.page.contacts.count
            summary.fetched += current.page.contacts.count
            summary.written += written
            progress?(SyncProgress(pass: .incremental, fetched: fetched, total: current.page.totalCount))
            guard !done else { return }
            try Task.checkCancellation()
            cursor = next
            lastTotal = total
        }
    }

    private func fetchSearchPage(floor: Int, after cursor: String?) async throws -> FetchedPage {
        var pagination: [String: JSONValue] = ["per_page": .int(Int64(Self.pageSize))]
        if let cursor { pagination["starting_after"] = .string(cursor) }
        let body: JSONValue = .object([
            "query": .object(["field": "updated_at", "operator": ">", "value": .int(Int64(floor))]),
            "pagination": .object(pagination),
            // Newest first: an edit made while the pass runs moves its contact to the front,
            // behind the cursor, where it can only make a page repeat one, never skip one.
            "sort": .object(["field": "updated_at", "order": "descending"]),
        ])
        return try await fetchPage("POST", "/contacts/search", json: body.jsonText)
    }

    /// Starts a pass from `given`, else from the watermark, or finds the one a killed process left.
    private static func startIncrementalPull(from given: Int?, in db: Database) throws
        -> (floor: Int, cursor: String?, lastTotal: Int?, resumed: Bool)
    {
        if let floor = try ContactMirror.syncState(.incrementalFloor, in: db).flatMap(Int.init) {
            return (
                floor, try ContactMirror.syncState(.incrementalCursor, in: db),
                try ContactMirror.syncState(.incrementalLastTotal, in: db).flatMap(Int.init), true
            )
        }
        let watermark = try ContactMirror.syncState(.incrementalWatermark, in: db).flatMap(Int.init)
        guard let floor = given ?? watermark.map({ $0 - incrementalMargin }) else {
            throw SyncError(.notReady, "no incremental watermark yet: run a full pull first (`intercom-sync sync --full`)")
        }
        try ContactMirror.setSyncState(.incrementalFloor, to: String(floor), in: db)
        try ContactMirror.setSyncState(.incrementalCursor, to: nil, in: db)
        try ContactMirror.setSyncState(.incrementalLastTotal, to: nil, in: db)
        return (floor, nil, nil, false)
    }
}
