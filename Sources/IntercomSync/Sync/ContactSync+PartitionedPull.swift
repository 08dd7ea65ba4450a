import Foundation
import IntercomJSON
import Synchronization

/// A full pull bound by the rate limit rather than the round trip: the workspace is cut into
/// ranges of `created_at` (`PullPlanner`), and `concurrency` workers walk them with
/// `POST /contacts/search`, each range on its own cursor, every request paced by the client's
/// one `RateLimitGovernor`.
extension ContactSync {
    enum PlanOutcome: Sendable {
        /// The ranges, and the first pages of those the plan's counts fetched, by `seq`.
        case ranges([PullRange], firstPages: [Int: FetchedPage] = [:])
        /// Search cannot serve this workspace: why, for the summary.
        case fallback(String)
    }

    /// Plans the ranges from search's counts, or says why the list must be walked instead:
    /// search refused the queries, or its count disagrees with the list's by more than the
    /// few contacts its lag may hide.
    func planRanges(from opening: PlanOpening) async throws -> (outcome: PlanOutcome, requests: Int) {
        let counts = RequestCount()
        let outcome = try await planRanges(from: opening, counting: counts)
        return (outcome, counts.value + PlanOpening.requests)
    }

    /// The requests a plan opens with, sent together (and, by `run`, beside `GET /me`): the
    /// list's count, the workspace's oldest and newest contacts by search, and its newest update.
    struct PlanOpening: Sendable {
        /// The list's count and the two ends, or the permanent error that refused them.
        var ends: Result<(listed: Int, oldest: FetchedPage, newest: FetchedPage), IntercomError>
        /// The workspace's newest update (`newestUpdateNow`).
        var newestUpdate: Int?

        static let requests = 4
    }

    func openPlan() async throws -> PlanOpening {
        async let newestUpdate = newestUpdateNow()
        let ends: Result<(listed: Int, oldest: FetchedPage, newest: FetchedPage), IntercomError>
        do {
            async let list = fetchPage("GET", "/contacts", query: [("per_page", "1")])
            async let first = searchPage(PullRange.everything, perPage: 1, sort: "ascending")
            async let last = searchPage(PullRange.everything, perPage: 1, sort: "descending")
            ends = .success((try await list.page.totalCount ?? 0, try await first, try await last))
        } catch let error as IntercomError where error.kind == .permanent {
            ends = .failure(error)
        }
        return PlanOpening(ends: ends, newestUpdate: try await newestUpdate)
    }

    private func planRanges(from opening: PlanOpening, counting requests: RequestCount) async throws -> PlanOutcome {
        let timezone = try mirror.syncState(.workspaceTimezone)
        let (listed, oldest, newest): (Int, FetchedPage, FetchedPage)
        switch opening.ends {
        case .success(let ends): (listed, oldest, newest) = ends
        case .failure(let error): return .fallback("search refused a range query (\(error.code): \(error.message))")
        }
        let searched = oldest.page.totalCount ?? 0
        guard abs(listed - searched) <= max(10, listed / 200) else {
            return .fallback("search counts \(searched) contacts where the list counts \(listed)")
        }
        guard let first = oldest.page.contacts.first?.fields[.createdAt]?.int,
            let last = newest.page.contacts.first?.fields[.createdAt]?.int
        else {
            return .ranges([PullRange(seq: 1, lower: nil, upper: nil, expected: searched)])
        }
        // A range a worker where the workspace is small (down to 2 pages a range), so that every
        // worker has one and the last to finish is short: at a second a page, a range of n pages
        // takes n seconds whatever the budget. `rangeTarget` at most: each range costs a count.
        // The round trip that sizes it is read after the first round of counts: the answers so
        // far (`GET /me` and the plan's first requests, sent together) may each have waited
        // behind the others at a server that answers one at a time, where the first of many
        // counts has not.
        let perWorker = max(2 * Self.pageSize, searched / concurrency)
        let planner = PullPlanner(
            timezone: timezone, target: min(rangeTarget ?? .max, perWorker), concurrency: concurrency,
            countingEveryPart: true)
        let client = self.client
        let roundTripTarget: @Sendable () -> Int = {
            min(perWorker, Self.rangeTarget(roundTrip: client.counters.fastestRoundTrip ?? 1))
        }
        // A count asks for the span's first page in the order its walk would, so that a span
        // that ends up a range has its first page already: a workspace planned in one round of
        // counts is walked from the second page of every range on, and the plan costs the budget
        // only the counts of spans it cut further or joined.
        let counted = CountedPages()
        do {
            let ranges = try await planner.plan(
                total: searched, first: min(first, last), last: max(first, last),
                retarget: rangeTarget == nil ? roundTripTarget : nil
            ) { lower, upper in
                requests.add(1)
                let span = PullRange(seq: 0, lower: lower, upper: upper, expected: 0)
                let page = try await self.searchPage(span.query, sort: span.sort)
                counted.keep(page, lower: lower, upper: upper)
                return page.page.totalCount ?? 0
            }
            return .ranges(ranges, firstPages: counted.firstPages(of: ranges))
        } catch let error as IntercomError where error.kind == .permanent {
            return .fallback("search refused a range query (\(error.code): \(error.message))")
        }
    }

    /// Contacts a range aims at where the round trip is long (a second, as Intercom's is): 20
    /// pages, so that the last range, walked alone, takes 20 round trips.
    static let slowRangeTarget = 20 * pageSize

    /// Contacts a range of a full pull aims at, for the server's round trip (the fastest answer
    /// once the plan's first round of counts is in, in seconds): as many pages as 5 seconds of
    /// round trips walk, from 20 (a round trip of 250 ms or more) to 100 (50 ms or less). A
    /// range costs the budget its last, partial page, and its count, which brings its first page
    /// unless the plan cut its span further or joined it (about a request a range); the last
    /// range, walked alone, costs its pages' round trips.
    static func rangeTarget(roundTrip seconds: Double) -> Int {
        let pages = seconds > 0 ? Int((5 / seconds).rounded(.down)) : 100
        return min(100, max(20, pages)) * pageSize
    }

    func searchPage(
        _ query: JSONValue, perPage: Int = pageSize, sort: String? = "ascending", by field: String = "created_at",
        after cursor: String? = nil
    ) async throws -> FetchedPage {
        try await fetchPage(
            "POST", "/contacts/search",
            json: Self.searchBody(query, perPage: perPage, sort: sort, by: field, after: cursor))
    }

    /// The body of `POST /contacts/search`: the query, a page of `perPage` after `cursor`, and
    /// the order (none when `sort` is nil).
    static func searchBody(
        _ query: JSONValue, perPage: Int = pageSize, sort: String? = "ascending", by field: String = "created_at",
        after cursor: String? = nil
    ) -> String {
        var pagination: [String: JSONValue] = ["per_page": .int(Int64(perPage))]
        if let cursor { pagination["starting_after"] = .string(cursor) }
        var body: [String: JSONValue] = ["query": query, "pagination": .object(pagination)]
        if let sort { body["sort"] = .object(["field": .string(field), "order": .string(sort)]) }
        return JSONValue.object(body).jsonText
    }

    /// What a walk of ranges is part of: a full pull, or an incremental pass (`updatedAfter`)
    /// that walks only the contacts updated after its floor, newest first.
    struct RangeWalk: Sendable {
        var table: PullRange.Table = .fullPull
        var updatedAfter: Int?
        /// Mark what the walk pulls as seen by the full pull in progress.
        var markingSeen = true

        static let fullPull = RangeWalk()

        var pass: SyncSummary.Pass { updatedAfter == nil ? .full : .incremental }

        func query(_ range: PullRange) -> JSONValue { range.query(updatedAfter: updatedAfter) }
        func sort(_ range: PullRange) -> (field: String, order: String) {
            updatedAfter == nil ? ("created_at", range.sort) : ("updated_at", "descending")
        }
    }

    /// Walks the ranges not yet done, `concurrency` at a time, the biggest first. Each page,
    /// the contacts it marks seen and its range's cursor commit in one transaction.
    func partitionedWalk(
        _ ranges: [PullRange], as kind: RangeWalk = .fullPull, firstPages: [Int: FetchedPage] = [:],
        into summary: inout SyncSummary, progress: (@Sendable (SyncProgress) -> Void)?
    ) async throws {
        let state = WalkState(ranges, firstPages: firstPages)
        let total = ranges.reduce(0) { $0 + max($1.expected, $1.fetched) }
        let workers = min(concurrency, max(1, ranges.count))
        let limit = ConcurrencyLimit(cap: workers, client: client)
        defer {
            summary.concurrencyBackoffs += limit.backoffs
            summary.peakConcurrency = max(summary.peakConcurrency, limit.peak)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<workers {
                group.addTask {
                    while let (range, first) = state.nextRange() {
                        try await self.walk(range, as: kind, first: first, limit: limit) { fetched, commit in
                            let done = state.count(fetched: fetched, commit: commit)
                            progress?(SyncProgress(pass: kind.pass, fetched: done, total: max(total, done)))
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let counted = state.tally
        summary.fetched += counted.new
        summary.written += counted.written
        summary.malformed += counted.malformed
    }

    /// Walks one range from its cursor to its end, from `first` (its first page, fetched by the
    /// plan) when it has not begun. A saved cursor Intercom no longer accepts
    /// restarts the range: what it already marked seen was seen in this pull. So does a total
    /// that shrank since the last committed page (`PullRange.sort`), up to
    /// `maximumRangeRestarts` times a run; the page that showed it still commits.
    func walk(
        _ range: PullRange, as kind: RangeWalk, first: FetchedPage? = nil, limit: ConcurrencyLimit,
        committed: @Sendable (_ fetched: Int, _ commit: PageCommit) -> Void
    ) async throws {
        var cursor = range.cursor
        var lastTotal = range.lastTotal
        var restarts = 0
        let query = kind.query(range)
        let sort = kind.sort(range)
        var prefetched = range.cursor == nil && range.fetched == 0 ? first : nil
        var walk = CursorGuard("POST /contacts/search", startingAfter: range.cursor)
        while true {
            let current: FetchedPage
            if let page = prefetched {
                current = page
                prefetched = nil
            } else {
                do {
                    current = try await limit.run {
                        try await searchPage(query, sort: sort.order, by: sort.field, after: cursor)
                    }
                } catch let error as IntercomError where cursor != nil && error.kind == .permanent {
                    try walk.cursorRefused(error)
                    cursor = nil
                    continue
                }
            }
            let total = current.page.totalCount
            var next = current.page.nextCursor
            var done = next == nil
            if Self.shrank(total, since: lastTotal, cursor: cursor, restarts: restarts) {
                restarts += 1
                next = nil
                done = false
                walk.restart()
            } else {
                try walk.check(next: next, ids: current.page.contacts.compactMap(\.id), total: total)
            }
            let page = try await mirror.commitRangePage(
                current.page, fetchedAt: current.fetchedAt, range: range.seq, next: next, total: total, done: done,
                table: kind.table, markingSeen: kind.markingSeen, notingPassNewest: kind.updatedAfter != nil)
            committed(current.page.contacts.count, page)
            guard !done else { return }
            try Task.checkCancellation()
            cursor = next
            lastTotal = total
        }
    }

    /// How many times one run walks a range again from its start because it shrank: a range
    /// losing contacts on every page would otherwise never finish. Past it the walk goes on; a
    /// contact it skipped is fetched by the proof of the unseen when the mirror held it, and
    /// otherwise waits for the next full pull.
    static let maximumRangeRestarts = 3

    /// Whether a page's `total` shows that contacts left behind the cursor since the page
    /// before (`PullRange.sort`), so that the walk must start again, restarts permitting.
    static func shrank(_ total: Int?, since lastTotal: Int?, cursor: String?, restarts: Int) -> Bool {
        guard cursor != nil, let total, let lastTotal else { return false }
        return total < lastTotal && restarts < maximumRangeRestarts
    }
}

/// What the workers of a partitioned walk share: the ranges left (with the first pages the
/// plan fetched), and what was committed.
private final class WalkState: Sendable {
    private let queue: Mutex<(ranges: ArraySlice<PullRange>, firstPages: [Int: ContactSync.FetchedPage])>
    private let counts: Mutex<(fetched: Int, new: Int, written: Int, malformed: [MalformedContact])>

    init(_ ranges: [PullRange], firstPages: [Int: ContactSync.FetchedPage]) {
        queue = Mutex((ranges.filter { !$0.done }[...], firstPages))
        counts = Mutex((ranges.reduce(0) { $0 + $1.fetched }, 0, 0, []))
    }

    func nextRange() -> (PullRange, ContactSync.FetchedPage?)? {
        queue.withLock { queue in
            guard let range = queue.ranges.popFirst() else { return nil }
            return (range, queue.firstPages.removeValue(forKey: range.seq))
        }
    }

    /// Counts a committed page; returns the contacts fetched so far, those of earlier runs of
    /// this pull included.
    func count(fetched: Int, commit: PageCommit) -> Int {
        counts.withLock { counts in
            counts.fetched += fetched
            counts.new += fetched
            counts.written += commit.written
            counts.malformed += commit.malformed
            return counts.fetched
        }
    }

    var tally: (fetched: Int, new: Int, written: Int, malformed: [MalformedContact]) { counts.withLock { $0 } }
}

/// Requests counted from concurrent tasks.
final class RequestCount: Sendable {
    private let count = Mutex(0)
    var value: Int { count.withLock { $0 } }
    func add(_ requests: Int) { count.withLock { $0 += requests } }
}

/// The pages a plan's counts fetched, each the first page of its span in the order the span's
/// walk reads it; kept for the spans that end up ranges of the plan.
final class CountedPages: Sendable {
    private struct Span: Hashable {
        var lower: Int?
        var upper: Int?
    }

    private let pages = Mutex<[Span: ContactSync.FetchedPage]>([:])
    /// The most pages held while planning (about 200 KB each): a workspace planned in many rounds
    /// keeps the first ones, and its other ranges fetch their first page.
    static let maximumKept = 2 * PullPlanner.maximumParts

    func keep(_ page: ContactSync.FetchedPage, lower: Int?, upper: Int?) {
        pages.withLock { pages in
            if pages.count < Self.maximumKept { pages[Span(lower: lower, upper: upper)] = page }
        }
    }

    /// The first pages of `ranges`, by `seq`; the others are dropped.
    func firstPages(of ranges: [PullRange]) -> [Int: ContactSync.FetchedPage] {
        pages.withLock { pages in
            defer { pages = [:] }
            return Dictionary(
                uniqueKeysWithValues: ranges.compactMap { range in
                    pages[Span(lower: range.lower, upper: range.upper)].map { (range.seq, $0) }
                })
        }
    }
}
