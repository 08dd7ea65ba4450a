import Foundation
import GRDB

extension ContactSync {
    /// Pulls what changed since the watermark with `POST /contacts/search` on `updated_at`,
    /// ascending, from two days below the watermark. Each page commits with the
    /// cursor after it; the watermark moves only when the pass completes. Re-applying a contact
    /// changes nothing, so the overlap costs requests, never correctness.
    func incrementalPull(into summary: inout SyncSummary, progress: (@Sendable (SyncProgress) -> Void)?) async throws {
        summary.passes.append(.incremental)
        let start = try await mirror.writer.write { db in try Self.startIncrementalPull(in: db) }
        summary.resumed = summary.resumed || start.resumed
        var fetched = 0
        var inFlight = Task { try await fetchSearchPage(floor: start.floor, after: start.cursor) }
        defer { inFlight.cancel() }
        while true {
            let current = try await inFlight.value
            let next = current.page.nextCursor
            if let next {
                inFlight = Task { try await fetchSearchPage(floor: start.floor, after: next) }
            }
            let written = try await mirror.writer.write { [now] db in
                let written = try ContactMirror.upsert(page: current.page, fetchedAt: current.fetchedAt, in: db)
                let pageNewest = current.page.contacts.compactMap(\.updatedAt).max()
                let passNewest = try ContactMirror.syncState(.incrementalPassNewest, in: db).flatMap(Int.init)
                let newest = [pageNewest, passNewest].compactMap { $0 }.max()
                if next == nil {
                    let watermark = try ContactMirror.syncState(.incrementalWatermark, in: db).flatMap(Int.init)
                    let advanced = [watermark, newest].compactMap { $0 }.max()
                    try ContactMirror.setSyncState(.incrementalWatermark, to: advanced.map(String.init), in: db)
                    try ContactMirror.setSyncState(.incrementalFloor, to: nil, in: db)
                    try ContactMirror.setSyncState(.incrementalCursor, to: nil, in: db)
                    try ContactMirror.setSyncState(.incrementalPassNewest, to: nil, in: db)
                    try ContactMirror.setSyncState(.lastIncrementalPullAt, to: String(now()), in: db)
                } else {
                    try ContactMirror.setSyncState(.incrementalCursor, to: next, in: db)
                    try ContactMirror.setSyncState(.incrementalPassNewest, to: newest.map(String.init), in: db)
                }
                return written
            }
            fetched += current.page.contacts.count
            summary.fetched += current.page.contacts.count
            summary.written += written
            progress?(SyncProgress(pass: .incremental, fetched: fetched, total: current.page.totalCount))
            guard next != nil else { return }
            try Task.checkCancellation()
        }
    }

    private func fetchSearchPage(floor: Int, after cursor: String?) async throws -> FetchedPage {
        var pagination: [String: JSONValue] = ["per_page": .int(Int64(Self.pageSize))]
        if let cursor { pagination["starting_after"] = .string(cursor) }
        let body: JSONValue = .object([
            "query": .object(["field": "updated_at", "operator": ">", "value": .int(Int64(floor))]),
            "pagination": .object(pagination),
            "sort": .object(["field": "updated_at", "order": "ascending"]),
        ])
        return try await fetchPage("POST", "/contacts/search", json: body.jsonText)
    }

    /// Starts a pass from the watermark, or finds the one a killed process left.
    private static func startIncrementalPull(in db: Database) throws -> (floor: Int, cursor: String?, resumed: Bool) {
        if let floor = try ContactMirror.syncState(.incrementalFloor, in: db).flatMap(Int.init) {
            return (floor, try ContactMirror.syncState(.incrementalCursor, in: db), true)
        }
        guard let watermark = try ContactMirror.syncState(.incrementalWatermark, in: db).flatMap(Int.init) else {
            throw SyncError(.notReady, "no incremental watermark yet: run a full pull first (`intercom-sync sync --full`)")
        }
        let floor = watermark - incrementalMargin
        try ContactMirror.setSyncState(.incrementalFloor, to: String(floor), in: db)
        try ContactMirror.setSyncState(.incrementalCursor, to: nil, in: db)
        return (floor, nil, false)
    }
}
