import Foundation
import IntercomJSON

extension ContactSync {
    /// Pulls what changed since the watermark with `POST /contacts/search` on `updated_at`,
    /// newest first, from two days below the watermark. Each page commits with the
    /// cursor after it; the watermark moves only when the pass completes. Re-applying a contact
    /// changes nothing, so the overlap costs requests, never correctness.
    ///
    /// Inside a full pull (`catchingUp`), the pass starts from `floor` rather than the watermark
    /// (which a first pull has not set yet), and marks what it pulls as seen by the pull.
    ///
    /// A pass is walked newest first, so a pass resumed from an earlier run has not seen what
    /// was edited since it began (those contacts moved to the front, behind its cursor): it is
    /// followed by a fresh pass from the watermark it set.
    func incrementalPull(
        into summary: inout SyncSummary, progress: (@Sendable (SyncProgress) -> Void)?,
        catchingUp floor: Int? = nil
    ) async throws {
        guard try await incrementalPass(into: &summary, progress: progress, catchingUp: floor) else { return }
        let watermark = try mirror.incrementalWatermark()
        _ = try await incrementalPass(
            into: &summary, progress: progress, catchingUp: floor == nil ? nil : watermark.map { $0 - Self.incrementalMargin })
    }

    /// One pass; true when it was resumed from an earlier run.
    private func incrementalPass(
        into summary: inout SyncSummary, progress: (@Sendable (SyncProgress) -> Void)?, catchingUp floor: Int?
    ) async throws -> Bool {
        if summary.passes.last != .incremental { summary.passes.append(.incremental) }
        let start = try await mirror.beginIncrementalPass(from: floor, margin: Self.incrementalMargin)
        summary.resumed = summary.resumed || start.resumed
        var ranges = try await mirror.pullRanges(.incremental)
        if ranges.isEmpty && start.cursor == nil && concurrency > 1 {
            ranges = try await planIncrementalRanges(floor: start.floor, into: &summary)
            try await mirror.planIncrementalPass(ranges)
        }
        if !ranges.isEmpty {
            summary.incrementalRanges = ranges.count
            let kind = RangeWalk(table: .incremental, updatedAfter: start.floor, markingSeen: floor != nil)
            try await partitionedWalk(ranges, as: kind, into: &summary, progress: progress)
            try await mirror.finishIncrementalPass(at: now())
            return start.resumed
        }
        var fetched = 0
        var cursor = start.cursor
        var lastTotal = start.lastTotal
        var restarts = 0
        var inFlight = Task { [cursor] in try await fetchSearchPage(floor: start.floor, after: cursor) }
        defer { inFlight.cancel() }
        var walk = CursorGuard("POST /contacts/search", startingAfter: cursor)
        while true {
            let current = try await inFlight.value
            let total = current.page.totalCount
            // Shrunk since the last page: a contact left behind the cursor, so this page may have
            // skipped one. Walk again from the newest (the page itself is good).
            let shrank = Self.shrank(total, since: lastTotal, cursor: cursor, restarts: restarts)
            if shrank {
                restarts += 1
                walk.restart()
            } else {
                try walk.check(
                    next: current.page.nextCursor, ids: current.page.contacts.compactMap(\.id), total: total)
            }
            let next = shrank ? nil : current.page.nextCursor
            let done = next == nil && !shrank
            if !done {
                inFlight = Task { [next] in try await fetchSearchPage(floor: start.floor, after: next) }
            }
            let committed = try await mirror.commitIncrementalPage(
                current.page, fetchedAt: current.fetchedAt, markingSeen: floor != nil, next: next, total: total, done: done,
                now: now())
            fetched += current.page.contacts.count
            summary.fetched += current.page.contacts.count
            summary.written += committed.written
            summary.malformed += committed.malformed
            progress?(SyncProgress(pass: .incremental, fetched: fetched, total: current.page.totalCount))
            guard !done else { return start.resumed }
            try Task.checkCancellation()
            cursor = next
            lastTotal = total
        }
    }

    /// A pass of more than `partitionFrom` contacts is split into ranges of `created_at`, as a
    /// full pull is (`PullPlanner`), each walked newest first by `updated_at`: a busy workspace
    /// edits tens of thousands of contacts a day, and a day-truncated window re-reads at least a
    /// day of them. A smaller pass walks one cursor (no ranges): planning would cost more than
    /// it saves.
    private func planIncrementalRanges(floor: Int, into summary: inout SyncSummary) async throws -> [PullRange] {
        let window = PullRange(seq: 0, lower: nil, upper: nil, expected: 0).query(updatedAfter: floor)
        let oldest: FetchedPage
        let newest: FetchedPage
        do {
            async let first = searchPage(window, perPage: 1, sort: "ascending")
            async let last = searchPage(window, perPage: 1, sort: "descending")
            (oldest, newest) = (try await first, try await last)
        } catch let error as IntercomError where error.kind == .permanent {
            return []
        }
        summary.planRequests += 2
        let total = oldest.page.totalCount ?? 0
        guard total > Self.partitionFrom, let first = oldest.page.contacts.first?.fields[.createdAt]?.int,
            let last = newest.page.contacts.first?.fields[.createdAt]?.int
        else { return [] }
        let timezone = try mirror.syncState(.workspaceTimezone)
        let target = min(rangeTarget ?? Self.slowRangeTarget, max(2 * Self.pageSize, total / concurrency))
        let planner = PullPlanner(timezone: timezone, target: target, concurrency: concurrency)
        let counts = RequestCount()
        do {
            let ranges = try await planner.plan(total: total, first: min(first, last), last: max(first, last)) {
                lower, upper in
                counts.add(1)
                let range = PullRange(seq: 0, lower: lower, upper: upper, expected: 0)
                return try await self.searchPage(range.query(updatedAfter: floor), perPage: 1, sort: nil)
                    .page.totalCount ?? 0
            }
            summary.planRequests += counts.value
            return ranges
        } catch let error as IntercomError where error.kind == .permanent {
            summary.planRequests += counts.value
            return []
        }
    }

    /// Passes larger than this many contacts (4 pages) are split into ranges.
    static let partitionFrom = 4 * pageSize

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
}
