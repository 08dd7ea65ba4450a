import Foundation

extension ContactSync {
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
        let start = try await mirror.beginFullPull(at: now())
        summary.resumed = summary.resumed || start.resumed
        if !start.walked {
            try await walkEverything(start: start, opening: opening, into: &summary, progress: progress)
        }
        let newestAtStart = try mirror.fullPullProgress()?.newestAtStart
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
        summary.tombstoned += try await mirror.finishFullPull(at: now(), caughtUp: caughtUp)
    }

    /// Walks the workspace, partitioned when it can be, and marks the walk done.
    private func walkEverything(
        start: FullPullProgress, opening: Task<PlanOpening, any Error>?, into summary: inout SyncSummary,
        progress: (@Sendable (SyncProgress) -> Void)?
    ) async throws {
        var ranges = try await mirror.pullRanges()
        let beginning = ranges.isEmpty && start.listCursor == nil
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
            try await mirror.planFullPull(ranges, newestAtStart: newestAtStart)
        }
        let held = try await mirror.liveContactCount()
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
                first = try await fetchListPage(after: start.listCursor)
            } catch let error as IntercomError where start.listCursor != nil && error.kind == .permanent {
                // Intercom no longer accepts the saved cursor: walk again from the first page.
                // The contacts already marked seen were seen in this pull: the result is the same.
                first = try await fetchListPage(after: nil)
            }
            let total = first.page.totalCount ?? 0
            try await deferringIndexes(total: total, held: held, into: &summary, progress: progress) { summary in
                try await self.listWalk(from: first, markingSeen: !start.noneOlder, into: &summary, progress: progress)
            }
        }
        try await mirror.markFullPullWalked()
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
            try walk.check(next: next, ids: current.page.contacts.compactMap { $0.id }, total: current.page.totalCount)
            if let next {
                inFlight = Task { try await fetchListPage(after: next) }
            }
            let page = current
            let committed = try await mirror.commitListPage(
                page.page, fetchedAt: page.fetchedAt, markingSeen: markingSeen, next: next)
            fetched += page.page.contacts.count
            summary.fetched += page.page.contacts.count
            summary.written += committed.written
            summary.malformed += committed.malformed
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

    /// Before a contact the walk did not see becomes a tombstone, a `GET` must prove it gone
    /// (404, or 410 for one merged away): search lags, and a contact can be missing from a walk
    /// that still exists. One that answers is stored and counts as seen. The share check runs
    /// first, so an empty or foreign walk costs no `GET` a contact.
    private func proveUnseen(startedAt: Int, allowMassDelete: Bool, into summary: inout SyncSummary) async throws {
        if !allowMassDelete { try await mirror.checkDeletionShare(pullStartedAt: startedAt) }
        var after = ""
        while true {
            let ids = try await mirror.unseenIDs(pullStartedAt: startedAt, after: after, limit: 500)
            guard let last = ids.last else { return }
            _ = try await forEachConcurrently(ids) { id in try await self.prove(id) }
            summary.proofRequests += ids.count
            after = last
        }
    }

    /// `GET /contacts/{id}`: true when Intercom says the contact is gone; otherwise stores it.
    func prove(_ id: String) async throws -> Bool {
        let sentAt = now()
        let answer = try await client.sendJSON("GET", "/contacts/\(IntercomClient.pathComponent(id))", accepting: [404, 410])
        guard answer.response.status < 300 else { return true }
        try await mirror.storeProvenAlive(answer.text, asked: id, etag: answer.response.header("etag"), fetchedAt: sentAt)
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
}
