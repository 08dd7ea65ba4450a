import Foundation
import GRDB
import IntercomSimulator
import Synchronization
import SyntheticData
import Testing

@testable import IntercomSync

/// Serialized: several simulators of thousands of contacts at once starve the two-thread pool
/// that the suite's other tests (with their one-second timeouts) share.
@Suite(.serialized) struct PartitionedPullTests {
    /// A partitioned sync of the harness's mirror, on the simulator's clock.
    static func parallelSync(
        _ harness: SimulatorHarness, concurrency: Int = 8, bulkLoadFrom: Int = 20_000, rangeTarget: Int = 3_000
    ) -> ContactSync {
        let clock = harness.workspace.clock
        return ContactSync(
            mirror: harness.mirror, client: harness.client, now: { clock.now }, bulkLoadFrom: bulkLoadFrom,
            concurrency: concurrency, rangeTarget: rangeTarget)
    }

    /// The search requests of the log: the planner's and the walk's.
    static func pageRequests(_ harness: SimulatorHarness) async -> Int {
        await harness.workspace.requestLog().filter { $0.path == "/contacts/search" }.count
    }

    // MARK: The planner

    @Test func rangesGrowWhereTheRoundTripIsShort() {
        let page = ContactSync.pageSize
        #expect(ContactSync.rangeTarget(roundTrip: 1) == 20 * page)
        #expect(ContactSync.rangeTarget(roundTrip: 0.25) == 20 * page)
        #expect(ContactSync.rangeTarget(roundTrip: 0.1) == 50 * page)
        #expect(ContactSync.rangeTarget(roundTrip: 0.05) == 100 * page)
        #expect(ContactSync.rangeTarget(roundTrip: 0.005) == 100 * page)
        #expect(ContactSync.rangeTarget(roundTrip: 0) == 100 * page)
        #expect(ContactSync.slowRangeTarget == 20 * page)
    }

    @Test func dayStartsFollowTheWorkspacesTimezoneThroughDST() {
        let planner = PullPlanner(timezone: "America/Los_Angeles", target: 10, concurrency: 4)
        // 2025-03-08 12:00 to 2025-03-10 12:00 UTC: the US moved its clocks on the 9th.
        let days = planner.dayStarts(from: 1_741_435_200, through: 1_741_608_000)
        let lengths = zip(days.dropFirst(), days).map { $0 - $1 }
        #expect(lengths.contains(23 * 3_600), "\(lengths)")
        #expect(lengths.allSatisfy { [23 * 3_600, 24 * 3_600].contains($0) })
        let autumn = planner.dayStarts(from: 1_762_000_000, through: 1_762_200_000)
        #expect(zip(autumn.dropFirst(), autumn).map { $0 - $1 }.contains(25 * 3_600))
        for start in days + autumn {
            #expect(planner.startOfDay(start) == start)
            #expect(planner.startOfDay(start - 1) != start)
        }
    }

    @Test func plannedRangesCoverEverySecondOnceAndStayNearTheirTarget() async throws {
        var generator = SyntheticData.SplitMix64(seed: 11)
        let planner = PullPlanner(timezone: "Europe/Dublin", target: 400, concurrency: 6)
        let bulkDay = planner.startOfDay(1_750_000_000)
        var times: [Int] = (0..<5_000).map { _ in 1_700_000_000 + generator.below(60_000_000) }
        times += (0..<3_000).map { _ in bulkDay + generator.below(86_400) }
        let sorted = times.sorted()
        let requests = Mutex(0)
        let ranges = try await planner.plan(total: sorted.count, first: sorted.first!, last: sorted.last!) { lower, upper in
            requests.withLock { $0 += 1 }
            return sorted.filter { $0 >= (lower ?? .min) && $0 < (upper ?? .max) }.count
        }
        // Every time falls in exactly one range.
        for time in sorted {
            let holding = ranges.filter { ($0.lower ?? .min) <= time && time < ($0.upper ?? .max) }
            #expect(holding.count == 1)
        }
        #expect(ranges.filter { $0.lower == nil }.count == 1 && ranges.filter { $0.upper == nil }.count == 1)
        #expect(ranges.reduce(0) { $0 + $1.expected } == sorted.count)
        // Only a single day may hold more than 1.5 × the target: the bulk day, walked first.
        for range in ranges where range.expected > 600 {
            let lower = try #require(range.lower)
            let upper = try #require(range.upper)
            #expect(planner.dayStarts(from: lower, through: upper - 1).count == 2, "one day: \(range)")
        }
        #expect(ranges.first?.expected == ranges.map(\.expected).max())
        #expect(ranges.first.map { ($0.lower ?? 0) <= bulkDay && bulkDay < ($0.upper ?? .max) } == true)
        #expect(ranges.count >= 8_000 / 400 / 2)
        #expect(requests.withLock { $0 } <= 2 * ranges.count + 12, "planning costs about a request a range")

        // A target lowered after the first round of counts cuts the rounds after it, and the
        // joins keep to it.
        let wide = PullPlanner(timezone: "Europe/Dublin", target: 4_000, concurrency: 6)
        let rounds = Mutex(0)
        let retargeted = try await wide.plan(
            total: sorted.count, first: sorted.first!, last: sorted.last!,
            retarget: {
                rounds.withLock { $0 += 1 }; return 400
            }
        ) { lower, upper in sorted.filter { $0 >= (lower ?? .min) && $0 < (upper ?? .max) }.count }
        #expect(rounds.withLock { $0 } >= 2)
        #expect(retargeted.count >= ranges.count / 2, "\(retargeted.count) ranges, \(ranges.count) at 400 from the start")
        #expect(retargeted.filter { $0.expected > 600 }.count == ranges.filter { $0.expected > 600 }.count)
        #expect(retargeted.reduce(0) { $0 + $1.expected } == sorted.count)
    }

    /// Counting every part asks, for each span the plan cuts, the very bounds of the range it
    /// may become (open at the workspace's edges), so that a plan made in one round of counts
    /// holds a count, and with it a first page, for every range.
    @Test func countingEveryPartAsksForTheRangesThemselves() async throws {
        var generator = SyntheticData.SplitMix64(seed: 5)
        let times = (0..<6_400).map { _ in 1_700_000_000 + generator.below(30_000_000) }.sorted()
        let planner = PullPlanner(timezone: "UTC", target: 100, concurrency: 64, countingEveryPart: true)
        let asked = Mutex<[Bound]>([])
        let ranges = try await planner.plan(total: times.count, first: times.first!, last: times.last!) { lower, upper in
            asked.withLock { $0.append(Bound(lower: lower, upper: upper)) }
            return times.filter { $0 >= (lower ?? .min) && $0 < (upper ?? .max) }.count
        }
        let spans = asked.withLock { $0 }
        #expect(spans.filter { $0.lower == nil }.count >= 1 && spans.filter { $0.upper == nil }.count >= 1)
        #expect(spans.allSatisfy { $0.lower != nil || $0.upper != nil }, "the whole workspace is never counted")
        let counted = Set(spans)
        let uncounted = ranges.filter { !counted.contains(Bound(lower: $0.lower, upper: $0.upper)) }
        #expect(uncounted.count <= ranges.count / 10, "\(uncounted.count) of \(ranges.count) ranges without a count")
        #expect(ranges.reduce(0) { $0 + $1.expected } == times.count)

        // Without it, the last part of each cut span is left to hold the rest, uncounted.
        let thrifty = PullPlanner(timezone: "UTC", target: 100, concurrency: 64)
        let thriftyAsks = Mutex(0)
        _ = try await thrifty.plan(total: times.count, first: times.first!, last: times.last!) { lower, upper in
            thriftyAsks.withLock { $0 += 1 }
            return times.filter { $0 >= (lower ?? .min) && $0 < (upper ?? .max) }.count
        }
        #expect(thriftyAsks.withLock { $0 } < spans.count)
    }

    private struct Bound: Hashable {
        var lower: Int?
        var upper: Int?
    }

    // MARK: The walk against the simulator

    /// The partitioned walk mirrors exactly what the list shows, on workspaces shaped to break it.
    @Test(arguments: ["spread", "bulk-day", "sparse", "utc"])
    func thePartitionedWalkMirrorsTheWorkspace(_ shape: String) async throws {
        let harness = try await SimulatorHarness.start(contacts: shape == "sparse" ? 40 : 4_000) {
            if shape == "bulk-day" { $0.bulkDay = ContactGenerator.BulkDay(start: 1_750_032_000, share: 0.6) }
            if shape == "utc" { $0.timezone = "UTC" }
        }
        defer { Task { await harness.stop() } }
        let sync = Self.parallelSync(harness)
        let summary = try await sync.run()
        #expect(summary.ranges > (shape == "sparse" ? 0 : 4), "\(summary)")
        #expect(summary.fallback == nil)
        #expect(summary.concurrencyBackoffs == 0, "no distress, no backing off")
        #expect(summary.fetched == (shape == "sparse" ? 40 : 4_000))
        #expect(try await harness.differences() == [])
        // Each page was fetched once: a range of n contacts takes ceil(n / 150) pages (one when
        // empty), and the rest of the searches are the planner's, whose counts of the spans that
        // became ranges brought their first pages.
        let searches = await Self.pageRequests(harness)
        let pages = summary.ranges + summary.fetched / ContactSync.pageSize
        #expect(
            searches - (summary.planRequests - 1) <= pages - summary.plannedPages,
            "\(searches) searches for \(pages) pages")
        if shape == "spread" { #expect(summary.plannedPages >= summary.ranges / 2, "\(summary)") }
        // About a count a range, and a few a round while a lopsided span is cut down to its day.
        #expect(summary.planRequests <= 2 * summary.ranges + 3 * 11 + 3, "\(summary.planRequests) for \(summary.ranges)")
    }

    @Test func changesWhileThePullRunsNeverTombstoneALiveContact() async throws {
        let harness = try await SimulatorHarness.start(contacts: 3_000) {
            $0.faults.latencyMilliseconds = 5
        }
        defer { Task { await harness.stop() } }
        _ = try await Self.parallelSync(harness, concurrency: 1).run()
        let ids = await harness.workspace.contactIDs()
        let users = try await harness.contactIDs(role: "user")
        let leads = try await harness.contactIDs(role: "lead")
        harness.workspace.clock.advance(by: 3_600)
        // A walk, and meanwhile the workspace changes: creations, edits, deletions, archives
        // and a merge, spread over the walk.
        let changes = Task {
            for step in 0..<40 {
                try await Task.sleep(for: .milliseconds(10))
                switch step % 5 {
                case 0: _ = try await harness.workspace.create(fieldsJSON: #"{"email": "new\#(step)@example.com"}"#)
                case 1: try await harness.workspace.edit(id: ids[step * 7], fieldsJSON: #"{"name": "Edited \#(step)"}"#)
                case 2: try await harness.workspace.delete(id: ids[step * 7])
                case 3: try await harness.workspace.archive(id: ids[step * 7])
                default:
                    try await harness.workspace.merge(from: leads[leads.count - 1 - step], into: users[users.count - 1 - step])
                }
            }
        }
        let summary = try await Self.parallelSync(harness).run(.full)
        try await changes.value
        #expect(summary.ranges > 1)
        // Nothing tombstoned is alive on Intercom.
        let listed = try await harness.listedContacts()
        let tombstoned = try harness.tombstonedIDs()
        #expect(tombstoned.isDisjoint(with: listed.keys), "a live contact was tombstoned")
        // The next pass brings the mirror level with the workspace.
        harness.workspace.clock.advance(by: 60)
        _ = try await Self.parallelSync(harness).run(.full)
        #expect(try await harness.differences() == [])
    }

    @Test func withASearchLagNothingLiveIsTombstonedAndOldChangesAreAllIn() async throws {
        let harness = try await SimulatorHarness.start(contacts: 2_000) { $0.searchLagSeconds = 300 }
        defer { Task { await harness.stop() } }
        _ = try await Self.parallelSync(harness).run()
        #expect(try await harness.differences() == [])
        // Changes made an hour ago have reached search; those of the last minute have not.
        let ids = await harness.workspace.contactIDs()
        for id in ids.prefix(10) { try await harness.workspace.edit(id: id, fieldsJSON: #"{"name": "An Hour Ago"}"#) }
        let old = try await harness.workspace.create(fieldsJSON: #"{"email": "hour@example.com"}"#)
        harness.workspace.clock.advance(by: 3_600)
        let recent = try await harness.workspace.create(fieldsJSON: #"{"email": "minute@example.com"}"#)
        try await harness.workspace.edit(id: ids[20], fieldsJSON: #"{"name": "A Minute Ago"}"#)
        harness.workspace.clock.advance(by: 60)
        let summary = try await Self.parallelSync(harness).run(.full)
        #expect(summary.tombstoned == 0, "the contacts search does not show yet are proven alive")
        let mirrored = try harness.mirroredContacts()
        #expect(mirrored[old] != nil)
        #expect(ids.prefix(10).allSatisfy { mirrored[$0]?["name"]?.string == "An Hour Ago" })
        #expect(try harness.tombstonedIDs().isEmpty)
        // Once the lag has passed, the next pull has the rest.
        harness.workspace.clock.advance(by: 600)
        _ = try await Self.parallelSync(harness).run(.full)
        #expect(try harness.mirroredContacts()[recent] != nil)
        #expect(try await harness.differences() == [])
    }

    /// A resumed pull walks again each range whose count differs from the mirror's, and what
    /// the new walk does not see is only a candidate: a contact search does not show yet (created
    /// within its lag, fetched by `GET`) is proven alive by its own `GET` and kept.
    @Test func aRewalkKeepsALiveContactItCannotSee() async throws {
        let harness = try await SimulatorHarness.start(contacts: 4_500) {
            $0.faults.latencyMilliseconds = 2
            $0.searchLagSeconds = 600
        }
        defer { Task { await harness.stop() } }
        let sync = Self.parallelSync(harness, concurrency: 4, rangeTarget: 450)
        _ = try await sync.runUntil(PageLimit(pages: 12))
        // Created now: the list and `GET` see it at once, search only after its lag.
        let unseen = try await harness.workspace.create(fieldsJSON: #"{"email": "not-in-search-yet@example.com"}"#)
        #expect(try await sync.getContact(unseen, freshness: .refresh).contact?.state == .synced)
        harness.workspace.clock.advance(by: 60)
        let summary = try await sync.run()
        #expect(summary.resumed)
        #expect(summary.rewalkedRanges >= 1, "the range holding it counts one fewer than the mirror: \(summary)")
        #expect(summary.proofRequests >= 1, "\(summary)")
        #expect(summary.tombstoned == 0, "\(summary)")
        #expect(try harness.mirror.contact(id: unseen)?.state == .synced, "a live contact was tombstoned")
        #expect(try harness.tombstonedIDs().isEmpty)
    }

    @Test func aStoppedParallelPullResumesEveryRangeWithoutRefetching() async throws {
        let harness = try await SimulatorHarness.start(contacts: 4_500) { $0.faults.latencyMilliseconds = 2 }
        defer { Task { await harness.stop() } }
        // Ranges of three pages, so that some are done and some not when the pull stops.
        let sync = Self.parallelSync(harness, concurrency: 4, rangeTarget: 450)
        let committed = try await sync.runUntil(PageLimit(pages: 12))
        #expect(committed >= 1_800 && committed < 4_500, "\(committed)")
        let ranges = try await harness.mirror.writer.read { db in try PullRange.fetchAll(db) }
        #expect(ranges.count > 4 && ranges.contains { $0.done } && ranges.contains { !$0.done })
        let before = await Self.pageRequests(harness)
        let summary = try await sync.run()
        #expect(summary.resumed)
        #expect(try await harness.differences() == [])
        let after = await Self.pageRequests(harness)
        let remainingPages = ranges.filter { !$0.done }.reduce(0) { total, range in
            total + (range.expected - range.fetched + ContactSync.pageSize - 1) / ContactSync.pageSize
        }
        // The resumed pull fetched what was left, and at most the pages that were in flight again;
        // then, as the walk began in an earlier run, one count a range and the catch-up pass of
        // what was edited since it began (pages of the contacts fetched beyond those left).
        let catchUp = (summary.fetched - (4_500 - committed)) / ContactSync.pageSize + 2 + summary.planRequests
        #expect(summary.recheckRequests == ranges.count)
        #expect(
            after - before <= remainingPages + ranges.count + 4 + summary.recheckRequests + catchUp,
            "\(after - before) for \(remainingPages) pages")
        #expect(try await harness.mirror.writer.read { db in try PullRange.fetchAll(db) }.isEmpty)
    }

    /// Search pages by position: contacts removed behind a range's cursor would make its next
    /// page skip as many. A first pull, stopped part-way, resumes after such removals and must
    /// still hold every contact (a skipped one was never in the mirror, so no proof finds it).
    @Test func removalsBehindAStoppedRangesCursorSkipNoContact() async throws {
        let harness = try await SimulatorHarness.start(contacts: 4_500) { $0.faults.latencyMilliseconds = 2 }
        defer { Task { await harness.stop() } }
        let sync = Self.parallelSync(harness, concurrency: 4, rangeTarget: 450)
        _ = try await sync.runUntil(PageLimit(pages: 12))
        let ranges = try await harness.mirror.writer.read { db in try PullRange.fetchAll(db) }
        let started = ranges.filter { !$0.done && $0.cursor != nil }
        #expect(!started.isEmpty)
        var created: [(id: String, at: Int)] = []
        for text in await harness.workspace.exportContacts() {
            guard case .object(let fields) = try JSONValue(jsonText: text), let id = fields["id"]?.string,
                let at = fields["created_at"]?.int
            else { continue }
            created.append((id, at))
        }
        for range in started {
            // The range's contacts in its walking order; its first ones are behind the cursor.
            var members = created.filter { member in
                member.at >= (range.lower ?? .min) && member.at < (range.upper ?? .max)
            }
            if range.sort == "descending" { members.reverse() }
            for member in members.prefix(3) { try await harness.workspace.delete(id: member.id) }
        }
        harness.workspace.clock.advance(by: 3_600)
        let summary = try await sync.run()
        #expect(summary.resumed)
        #expect(try await harness.differences() == [])
    }

    @Test func serverErrorsMakeTheWalkBackOffAndItStillMirrorsTheWorkspace() async throws {
        // The plan's counts bring each range its first page, so the walk itself sends about a
        // request a range: 26 here, of which none failing has a chance of 0.75^26 (0.06 %).
        // The simulator draws its faults as requests interleave, so no seed fixes the outcome.
        let harness = try await SimulatorHarness.start(contacts: 8_000) {
            $0.faults.latencyMilliseconds = 2
            $0.faults.serverErrorRate = 0.25
            $0.faults.seed = 3
        }
        defer { Task { await harness.stop() } }
        let summary = try await Self.parallelSync(harness, concurrency: 16, rangeTarget: 300).run()
        #expect(summary.retries > 0)
        #expect(summary.concurrencyBackoffs > 0, "\(summary)")
        #expect(try await harness.differences() == [])
    }

    @Test func aSearchThatDisagreesWithTheListFallsBackToTheListWalk() async throws {
        let harness = try await SimulatorHarness.start(contacts: 1_000) { $0.searchLagSeconds = 600 }
        defer { Task { await harness.stop() } }
        for index in 0..<50 { _ = try await harness.workspace.create(fieldsJSON: #"{"email": "late\#(index)@example.com"}"#) }
        let summary = try await Self.parallelSync(harness).run()
        #expect(summary.fallback?.contains("search counts 1000 contacts where the list counts 1050") == true, "\(summary)")
        #expect(summary.ranges == 0)
        #expect(try await harness.differences() == [])
    }

    @Test func underALowLimitTheParallelPullKeepsToTheBudget() async throws {
        // The wall clock, so windows pass: 30 requests a second.
        let harness = try await SimulatorHarness.start(contacts: 3_000, startTime: nil) {
            $0.rateLimit = 30
            $0.rateLimitWindowSeconds = 1
        }
        defer { Task { await harness.stop() } }
        let summary = try await Self.parallelSync(harness, concurrency: 16).run()
        #expect(try await harness.differences() == [])
        let log = await harness.workspace.requestLog().filter { !$0.path.hasPrefix("/_sim") }
        let windows = Set(log.map(\.time)).count
        let limited = log.filter { $0.status == 429 }.count
        #expect(Double(limited) <= Double(windows), "\(limited) 429s over \(windows) windows")
        #expect(summary.rateLimited == limited)
    }

    @Test func maxRateLeavesTheRestOfEachWindow() async throws {
        let harness = try await SimulatorHarness.start(contacts: 3_000, startTime: nil) {
            $0.rateLimit = 40
            $0.rateLimitWindowSeconds = 1
        }
        defer { Task { await harness.stop() } }
        let clock = harness.workspace.clock
        let client = IntercomClient(
            connection: harness.client.connection, governor: RateLimitGovernor(share: 0.5),
            retryPolicy: harness.client.retryPolicy)
        let sync = ContactSync(mirror: harness.mirror, client: client, now: { clock.now }, concurrency: 16)
        _ = try await sync.run()
        #expect(try await harness.differences() == [])
        let log = await harness.workspace.requestLog().filter { !$0.path.hasPrefix("/_sim") }
        let perWindow = Dictionary(grouping: log, by: \.time).mapValues(\.count)
        #expect(perWindow.values.allSatisfy { $0 <= 20 + 1 }, "\(perWindow.sorted { $0.key < $1.key })")
        #expect(!log.contains { $0.status == 429 })
    }

    @Test func manyRequestsInFlightReuseABoundedSetOfConnections() async throws {
        let harness = try await SimulatorHarness.start(contacts: 10_000, timeout: 30) {
            $0.faults.latencyMilliseconds = 20
        }
        defer { Task { await harness.stop() } }
        let clock = harness.workspace.clock
        let client = IntercomClient(
            connection: harness.client.connection, transport: CurlTransport(timeout: 30, maximumConnectionsPerHost: 48),
            retryPolicy: harness.client.retryPolicy)
        let sync = ContactSync(mirror: harness.mirror, client: client, now: { clock.now }, concurrency: 48)
        let summary = try await sync.run()
        #expect(try await harness.differences() == [])
        let first = await harness.workspace.connectionCount()
        harness.workspace.clock.advance(by: 60)
        let again = try await sync.run(.full)
        harness.workspace.clock.advance(by: 60)
        let third = try await sync.run(.full)
        let connections = await harness.workspace.connectionCount()
        // Without keep-alive there would be a connection a request; with a pool that is not
        // bounded, more connections than requests in flight as requests come and go (URLSession
        // over libcurl opened 77-129 here). The three pulls share one pool of 48.
        let requests = summary.requests + again.requests + third.requests
        #expect(
            first <= 48 && connections <= 48, "\(first), then \(connections) connections for \(requests) requests, 48 in flight")
        #expect(
            requests > 4 * connections, "connections are kept alive and reused: \(requests) requests, \(connections) connections")
    }
}
