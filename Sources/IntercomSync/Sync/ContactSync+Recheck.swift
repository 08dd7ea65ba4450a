import Foundation
import IntercomJSON

/// What makes a resumed full pull exact. A walk killed and resumed, maybe days later, has pages
/// that were read before the workspace changed. The edits since are caught up by an incremental
/// pass from the walk's beginning (`fullPull`); the deletions, archives and merges are found here.
///
/// After the catch-up the mirror holds every contact the workspace holds: each was either walked
/// or, created or edited since the walk began, pulled by the catch-up. So in each range of
/// `created_at`, the mirror's synced contacts can only outnumber the workspace's, by exactly
/// those that went away. A range whose counts agree is exact; one whose counts differ is walked
/// again, and what the new walk does not see is proven gone by `GET` and tombstoned. A range
/// costs one count request; only the ranges that lost contacts cost a walk.
extension ContactSync {
    /// The newest `updated_at` in the workspace now, by the server's clock, or nil when search
    /// will not say. Asked before a full walk's first page: an edit made after it is at or above.
    func newestUpdateNow() async throws -> Int? {
        let body: JSONValue = .object([
            "query": PullRange.everything, "pagination": .object(["per_page": 1]),
            "sort": .object(["field": "updated_at", "order": "descending"]),
        ])
        do {
            let page = try await fetchPage("POST", "/contacts/search", json: body.jsonText)
            return page.page.contacts.first?.updatedAt
        } catch let error as IntercomError where error.kind == .permanent {
            return nil
        }
    }

    /// Compares every range's count with the mirror's and walks again the ranges that differ.
    func recheck(into summary: inout SyncSummary, allowMassDelete: Bool) async throws {
        var ranges = try await mirror.pullRanges()
        let partitioned = !ranges.isEmpty
        if !partitioned {
            // A list walk: the whole workspace is one range, counted by the list.
            ranges = [PullRange(seq: 0, lower: nil, upper: nil, expected: 0)]
        }
        let held = try await mirror.syncedCounts(in: ranges)
        let queries = Dictionary(uniqueKeysWithValues: ranges.map { (String($0.seq), $0.query) })
        let counted = try await forEachConcurrently(ranges.map { String($0.seq) }) { seq in
            if partitioned {
                return try await self.searchPage(queries[seq]!, perPage: 1, sort: nil).page.totalCount ?? 0
            }
            return try await self.fetchPage("GET", "/contacts", query: [("per_page", "1")]).page.totalCount ?? 0
        }
        summary.recheckRequests += ranges.count
        for (index, range) in ranges.enumerated() where held[index] != counted[index] {
            summary.rewalkedRanges += 1
            try await rewalk(range, partitioned: partitioned, allowMassDelete: allowMassDelete, into: &summary)
        }
    }

    /// Walks one range again from its start, then proves gone, one `GET` each, the mirror's
    /// synced contacts of the range that the walk did not see (and nothing fetched since it
    /// began), and tombstones them.
    private func rewalk(
        _ range: PullRange, partitioned: Bool, allowMassDelete: Bool, into summary: inout SyncSummary
    ) async throws {
        let began = now()
        var seen = Set<String>()
        var cursor: String?
        var lastTotal: Int?
        var restarts = 0
        var more = true
        var walk = CursorGuard(partitioned ? "POST /contacts/search" : "GET /contacts")
        while more {
            let current =
                try await partitioned
                ? searchPage(range.query, sort: range.sort, after: cursor) : fetchListPage(after: cursor)
            let committed = try await mirror.commitRewalkPage(current.page, fetchedAt: current.fetchedAt)
            for contact in current.page.contacts { if let id = contact.id { seen.insert(id) } }
            summary.fetched += current.page.contacts.count
            summary.written += committed.written
            summary.malformed += committed.malformed
            let total = current.page.totalCount
            if partitioned, Self.shrank(total, since: lastTotal, cursor: cursor, restarts: restarts) {
                restarts += 1  // It shrank: a page may have skipped a contact (`PullRange.sort`).
                cursor = nil
                seen.removeAll()
                walk.restart()
            } else {
                try walk.check(next: current.page.nextCursor, ids: current.page.contacts.compactMap(\.id))
                cursor = current.page.nextCursor
                more = cursor != nil
            }
            lastTotal = total
        }
        let candidates = try await mirror.syncedIDs(createdIn: range.lower, range.upper, fetchedBefore: began)
            .filter { !seen.contains($0) }
        guard !candidates.isEmpty else { return }
        if !allowMassDelete { try await mirror.checkDeletionShare(doomed: candidates.count) }
        let gone = try await forEachConcurrently(candidates) { id in try await self.prove(id) }
        summary.proofRequests += candidates.count
        let proven = zip(candidates, gone).filter { _, isGone in isGone }.map(\.0)
        summary.tombstoned += try await mirror.tombstone(proven: proven, at: now())
    }
}
