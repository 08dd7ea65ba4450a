import Foundation
import GRDB
import IntercomSimulator
import Testing

@testable import IntercomSync

@Suite struct IncrementalPullTests {
    @Test func incrementalPullPicksUpEditsAndCreates() async throws {
        let harness = try await SimulatorHarness.start(contacts: 500)
        defer { Task { await harness.stop() } }
        _ = try await harness.sync.run()
        let ids = await harness.workspace.contactIDs()
        harness.workspace.clock.advance(by: 3_600)
        for id in ids.prefix(5) {
            try await harness.workspace.edit(id: id, fieldsJSON: #"{"name": "Edited Näme"}"#)
        }
        for index in 0..<3 {
            _ = try await harness.workspace.create(fieldsJSON: #"{"role": "lead", "email": "new\#(index)@example.com"}"#)
        }
        let summary = try await harness.sync.run()
        #expect(summary.passes == [.incremental])
        #expect(summary.written == 8)
        // Only the recent days are asked for, not the whole workspace.
        #expect(summary.fetched < 500)
        #expect(try await harness.differences() == [])
        #expect(try harness.mirror.syncState(.incrementalFloor) == nil)
    }

    @Test func updatesOnTheWatermarksDayAreNotMissed() async throws {
        let harness = try await SimulatorHarness.start(contacts: 300)
        defer { Task { await harness.stop() } }
        _ = try await harness.sync.run()
        let watermark = try #require(try harness.mirror.syncState(.incrementalWatermark).flatMap(Int.init))
        // Stable versions cut `updated_at > W` to "from the day after day(W)": an edit a few
        // seconds after W, on W's own day, is only found thanks to the margin.
        harness.workspace.clock.set(watermark + 5)
        let id = await harness.workspace.contactIDs()[42]
        try await harness.workspace.edit(id: id, fieldsJSON: #"{"name": "Same Day"}"#)
        _ = try await harness.sync.run()
        #expect(try harness.mirror.contact(id: id)?.contact.name == "Same Day")
        #expect(try await harness.differences() == [])
    }

    @Test func contactsSharingOneUpdatedAtAcrossAPageBoundaryAreAllKept() async throws {
        let harness = try await SimulatorHarness.start(contacts: 10)
        defer { Task { await harness.stop() } }
        _ = try await harness.sync.run()
        harness.workspace.clock.advance(by: 86_400)
        // 200 contacts with one updated_at: the search pages split them 150 + 50.
        for index in 0..<200 {
            _ = try await harness.workspace.create(fieldsJSON: #"{"role": "user", "email": "tie\#(index)@example.com"}"#)
        }
        let summary = try await harness.sync.run()
        #expect(summary.written == 200)
        // GET /me and two pages, then the tags, the segments and the count of companies.
        #expect(summary.requests == 6)
        #expect(summary.linkRequests == 3)
        #expect(try await harness.differences() == [])
        // Re-applying the same pages changes nothing.
        let again = try await harness.sync.run()
        #expect(again.written == 0)
        #expect(again.fetched >= 200)
    }

    @Test func reconcileConvergesAfterDeletesArchivesAndMerges() async throws {
        let harness = try await SimulatorHarness.start(contacts: 600)
        defer { Task { await harness.stop() } }
        _ = try await harness.sync.run()
        let users = try await harness.contactIDs(role: "user")
        let leads = try await harness.contactIDs(role: "lead")
        harness.workspace.clock.advance(by: 2 * 86_400)
        try await harness.workspace.delete(id: users[0])
        try await harness.workspace.archive(id: users[1])
        try await harness.workspace.merge(from: leads[0], into: users[2])
        try await harness.workspace.edit(id: users[3], fieldsJSON: #"{"phone": "+447700900123"}"#)
        // An incremental pull cannot see deletions ...
        _ = try await harness.sync.run()
        #expect(try harness.tombstonedIDs().isEmpty)
        // ... a reconcile does.
        let summary = try await harness.sync.run(.reconcile)
        #expect(summary.passes == [.incremental, .full])
        #expect(summary.tombstoned == 3)
        #expect(try harness.tombstonedIDs() == [users[0], users[1], leads[0]])
        #expect(try await harness.differences() == [])
        // Unarchived: the next full pull brings it back.
        harness.workspace.clock.advance(by: 60)
        try await harness.workspace.archive(id: users[1], false)
        _ = try await harness.sync.run(.full)
        #expect(try harness.mirror.contact(id: users[1])?.state == .synced)
        #expect(try await harness.differences() == [])
    }

    @Test func interruptedPassResumesAndMovesTheWatermarkOnlyAtTheEnd() async throws {
        let harness = try await SimulatorHarness.start(contacts: 20)
        defer { Task { await harness.stop() } }
        _ = try await harness.sync.run()
        let watermark = try harness.mirror.syncState(.incrementalWatermark)
        harness.workspace.clock.advance(by: 86_400)
        for index in 0..<400 {
            _ = try await harness.workspace.create(fieldsJSON: #"{"role": "lead", "email": "late\#(index)@example.com"}"#)
        }
        let committed = try await harness.sync.runUntil(PageLimit(pages: 1))
        #expect(committed < 420)
        #expect(try harness.mirror.syncState(.incrementalCursor) != nil)
        #expect(try harness.mirror.syncState(.incrementalWatermark) == watermark)
        let resumed = try await harness.sync.run()
        #expect(resumed.resumed)
        #expect(resumed.passes == [.incremental])
        #expect(try await harness.differences() == [])
        #expect(try harness.mirror.syncState(.incrementalWatermark) != watermark)
        #expect(try harness.mirror.syncState(.incrementalCursor) == nil)
    }
}

/// An incremental pass of many edits, split into ranges of `created_at` and walked in parallel.
@Suite(.serialized) struct PartitionedIncrementalPullTests {
    /// Edits `count` contacts spread over the workspace, the clock moving a second each.
    static func edit(_ harness: SimulatorHarness, count: Int, round: Int) async throws -> [String] {
        let ids = await harness.workspace.contactIDs()
        let step = max(1, ids.count / count)
        var edited: [String] = []
        for index in stride(from: 0, to: ids.count, by: step).prefix(count) {
            harness.workspace.clock.advance(by: 1)
            try await harness.workspace.edit(id: ids[index], fieldsJSON: #"{"name": "Round \#(round) \#(index)"}"#)
            edited.append(ids[index])
        }
        return edited
    }

    @Test func manyEditsArePulledByRangesInParallel() async throws {
        let harness = try await SimulatorHarness.start(contacts: 4_000) { $0.faults.latencyMilliseconds = 2 }
        defer { Task { await harness.stop() } }
        let sync = PartitionedPullTests.parallelSync(harness, rangeTarget: 450)
        _ = try await sync.run()
        harness.workspace.clock.advance(by: 86_400)
        _ = try await Self.edit(harness, count: 1_500, round: 1)
        try await harness.workspace.delete(id: harness.workspace.contactIDs()[7])
        let summary = try await sync.run()
        #expect(summary.passes == [.incremental])
        #expect(summary.incrementalRanges > 2, "\(summary)")
        #expect(summary.written >= 1_500)
        #expect(try await harness.differences() == ["extra \(await harness.workspace.deletedIDs().first!)"])
        #expect(try harness.mirror.syncState(.incrementalFloor) == nil)
        #expect(try await harness.mirror.writer.read { db in try PullRange.fetchAll(db, table: .incremental) }.isEmpty)
        // Nothing new: the next pass finds only the edits of the margin again, and writes none.
        let again = try await sync.run()
        #expect(again.written == 0)
    }

    @Test func aStoppedPartitionedPassResumesItsRanges() async throws {
        let harness = try await SimulatorHarness.start(contacts: 4_000) { $0.faults.latencyMilliseconds = 2 }
        defer { Task { await harness.stop() } }
        let sync = PartitionedPullTests.parallelSync(harness, concurrency: 4, rangeTarget: 300)
        _ = try await sync.run()
        harness.workspace.clock.advance(by: 86_400)
        _ = try await Self.edit(harness, count: 2_000, round: 1)
        _ = try await sync.runUntil(PageLimit(pages: 5))
        let ranges = try await harness.mirror.writer.read { db in try PullRange.fetchAll(db, table: .incremental) }
        #expect(ranges.count > 2 && ranges.contains { !$0.done }, "\(ranges.count)")
        #expect(try harness.mirror.syncState(.incrementalFloor) != nil)
        let before = await PartitionedPullTests.pageRequests(harness)
        let summary = try await sync.run()
        #expect(summary.resumed)
        #expect(try await harness.differences() == [])
        let after = await PartitionedPullTests.pageRequests(harness)
        let remaining = ranges.filter { !$0.done }.reduce(0) { total, range in
            total + (range.expected - range.fetched + ContactSync.pageSize - 1) / ContactSync.pageSize
        }
        // What was left, the pages in flight again, and then a fresh pass (a resumed pass has not
        // seen the edits made since it began): its plan and its window, the 2,000 edits at most.
        let freshPass = (2_000 + ContactSync.pageSize - 1) / ContactSync.pageSize + 2 * ranges.count + 4
        #expect(
            after - before <= remaining + ranges.count + 4 + freshPass,
            "\(after - before) for \(remaining) pages and a fresh pass")
        #expect(summary.passes == [.incremental])
    }
}
