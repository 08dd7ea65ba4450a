import Foundation
import GRDB
import IntercomSimulator
import Synchronization
import Testing

@testable import IntercomSync

@Suite struct FullPullTests {
    @Test func fullPullMirrorsTheWorkspace() async throws {
        let harness = try await SimulatorHarness.start(contacts: 1_000)
        defer { Task { await harness.stop() } }
        let summary = try await harness.sync.run()
        #expect(summary.passes == [.full])
        #expect(summary.fetched == 1_000)
        #expect(summary.written == 1_000)
        // GET /me, the newest update (where the next incremental pull starts), ceil(1000 / 150) pages,
        // then the tags, the segments and the companies' one page.
        #expect(summary.requests == 12)
        #expect(summary.linkRequests == 3)
        #expect(try await harness.differences() == [])
        #expect(try harness.mirror.syncState(.fullPullStartedAt) == nil)
        #expect(try harness.mirror.syncState(.incrementalWatermark) != nil)
    }

    /// The tag, segment and company lists are read while the walk runs, not after its last
    /// page: at a slow API they would add a round trip to the end of every sync.
    @Test func theListsAreReadBesideTheWalk() async throws {
        let harness = try await SimulatorHarness.start(contacts: 1_000) { $0.faults.latencyMilliseconds = 100 }
        defer { Task { await harness.stop() } }
        let summary = try await harness.sync.run()
        #expect(summary.requests == 12 && summary.linkRequests == 3)
        let log = await harness.workspace.requestLog()
        let lastPage = try #require(log.lastIndex { $0.path == "/contacts" || $0.path == "/contacts/search" })
        for list in ["/tags", "/segments", "/companies"] {
            let read = try #require(log.firstIndex { $0.path == list }, "\(list)")
            #expect(read < lastPage, "\(list) was asked for before the walk's last page")
        }
        #expect(try await harness.differences() == [])

        // A tag made on Intercom after the lists were read, on a contact the walk then reads:
        // the list is read again, and the tag is named all the same.
        let stale = try await harness.sync.readLists()
        let id = try #require(try await harness.contactIDs(role: "user").first)
        harness.workspace.clock.advance(by: 60)
        _ = try await harness.workspace.tag(contact: id, name: "Made Mid-Pull")
        var second = SyncSummary()
        try await harness.sync.incrementalPull(into: &second, progress: nil)
        try await harness.sync.syncLinks(full: false, lists: Task { stale }, into: &second)
        #expect(try harness.mirror.links(ofContact: id).tags.contains("Made Mid-Pull"))
    }

    @Test func secondFullPullWritesNothingAndTombstonesTheMissing() async throws {
        let harness = try await SimulatorHarness.start(contacts: 400)
        defer { Task { await harness.stop() } }
        _ = try await harness.sync.run()
        let users = try await harness.contactIDs(role: "user")
        let leads = try await harness.contactIDs(role: "lead")
        harness.workspace.clock.advance(by: 60)
        try await harness.workspace.delete(id: users[3])
        try await harness.workspace.archive(id: users[10])
        try await harness.workspace.merge(from: leads[0], into: users[20])
        let summary = try await harness.sync.run(.full)
        #expect(summary.tombstoned == 3)
        #expect(summary.written == 1)  // the merge survivor changed
        #expect(try harness.tombstonedIDs() == [users[3], users[10], leads[0]])
        #expect(try await harness.differences() == [])
    }

    @Test func pendingContactsAreNeverTombstoned() async throws {
        let harness = try await SimulatorHarness.start(contacts: 200)
        defer { Task { await harness.stop() } }
        _ = try await harness.sync.run()
        let ids = await harness.workspace.contactIDs()
        try await harness.mirror.writer.write { db in
            try db.execute(sql: "UPDATE contacts SET state = 'pending' WHERE id = ?", arguments: [ids[0]])
        }
        try await harness.workspace.delete(id: ids[0])
        _ = try await harness.sync.run(.full)
        #expect(try harness.mirror.contact(id: ids[0])?.state == .pending)
    }

    @Test func interruptedPullResumesFromItsCursor() async throws {
        let harness = try await SimulatorHarness.start(contacts: 600)
        defer { Task { await harness.stop() } }
        let counting = PageLimit(pages: 2)
        let interrupted = try await harness.sync.runUntil(counting)
        #expect(interrupted == 300)
        #expect(try harness.mirror.syncState(.fullPullCursor) != nil)
        let summary = try await harness.sync.run()
        #expect(summary.resumed)
        // The two pages left, and the catch-up of what was edited since the walk began (the
        // seeded contacts updated in the last day or two before it).
        #expect(summary.passes == [.full, .incremental])
        #expect(summary.fetched >= 300 && summary.fetched < 300 + 150, "\(summary)")
        #expect(try await harness.differences() == [])
    }

    /// A mirror that held no synced contact when the pull began can have none left unseen: the
    /// walk marks nothing seen. One that held some marks the contacts it did not rewrite.
    @Test func aPullIntoAnEmptyMirrorLooksForNothingUnseen() async throws {
        let harness = try await SimulatorHarness.start(contacts: 600)
        defer { Task { await harness.stop() } }
        func seen() throws -> Int { try harness.mirror.count("SELECT count(*) FROM full_pull_seen") }
        #expect(try await harness.sync.runUntil(PageLimit(pages: 2)) == 300)
        #expect(try harness.mirror.syncState(.fullPullNoneOlder) == "1")
        #expect(try seen() == 0)
        _ = try await harness.sync.run()
        #expect(try harness.mirror.syncState(.fullPullNoneOlder) == nil)
        #expect(try await harness.differences() == [])

        harness.workspace.clock.advance(by: 60)
        #expect(try await harness.sync.runUntil(PageLimit(pages: 2), mode: .full) == 600)
        #expect(try harness.mirror.syncState(.fullPullNoneOlder) == nil)
        #expect(try seen() == 300, "the unchanged contacts of two pages")
        let ids = await harness.workspace.contactIDs()
        try await harness.workspace.delete(id: ids[599])
        let summary = try await harness.sync.run(.full)
        #expect(summary.tombstoned == 1)
        #expect(try await harness.differences() == [])
    }

    @Test func aWalkThatWouldTombstoneTooMuchStopsBeforeCommitting() async throws {
        let harness = try await SimulatorHarness.start(contacts: 100)
        defer { Task { await harness.stop() } }
        _ = try await harness.sync.run()
        let ids = await harness.workspace.contactIDs()
        for id in ids.prefix(15) { try await harness.workspace.delete(id: id) }
        harness.workspace.clock.advance(by: 60)
        let fifteen = try await harness.sync.run(.full)
        #expect(fifteen.tombstoned == 15, "15 of 100 is a plausible cull")

        for id in ids.dropFirst(15).prefix(30) { try await harness.workspace.delete(id: id) }
        harness.workspace.clock.advance(by: 60)
        await #expect {
            try await harness.sync.run(.full)
        } throws: { error in
            (error as? SyncError)?.kind == .massDelete && "\(error)".contains("tombstone 30 (35%)")
        }
        #expect(try harness.mirror.status().contacts.synced == 85, "nothing of the walk's end was committed")
        let confirmed = try await harness.sync.run(.full, safety: ContactSync.Safety(allowMassDelete: true))
        #expect(confirmed.tombstoned == 30)
        #expect(try await harness.differences() == [])
    }
}

extension FullPullTests {
    /// A sync of the harness's mirror that defers indexing from `bulkLoadFrom` contacts.
    static func bulkSync(_ harness: SimulatorHarness, from count: Int) -> ContactSync {
        let clock = harness.workspace.clock
        return ContactSync(mirror: harness.mirror, client: harness.client, now: { clock.now }, bulkLoadFrom: count)
    }

    @Test func aFirstPullIntoAnEmptyMirrorDefersItsIndexing() async throws {
        let harness = try await SimulatorHarness.start(contacts: 700)
        defer { Task { await harness.stop() } }
        let sync = Self.bulkSync(harness, from: 500)
        let indexing = Mutex(false)
        let mirror = harness.mirror
        let duringLoad = Mutex<Set<String>?>(nil)
        let summary = try await sync.run { progress in
            if progress.indexing { indexing.withLock { $0 = true } }
            if progress.fetched == 300 { duringLoad.withLock { $0 = try? BulkLoadTests.secondaryIndexes(mirror) } }
        }
        #expect(summary.deferredIndexing && summary.fetched == 700)
        #expect(indexing.withLock { $0 })
        // Only the state index stays: a pull's contacts are all synced, and it holds the others.
        #expect(duringLoad.withLock { $0 } == ["contacts_by_state"])
        #expect(try await harness.differences() == [])
        try BulkLoadTests.expectExact(harness.mirror)
        var search = ContactQuery()
        let someone = try #require(try harness.mirror.all(ContactQuery()).last)
        search.search = someone.contact.email
        #expect(try harness.mirror.contacts(matching: search).contacts.map(\.id).contains(someone.id))
        // The mirror now holds the workspace: the next walk indexes as it writes.
        harness.workspace.clock.advance(by: 60)
        #expect(try await sync.run(.full).deferredIndexing == false)
    }

    /// A bulk pull stopped part-way (here cancelled; kill -9 is `BulkLoadTests`) leaves exact
    /// indexes, and the resumed pull completes the mirror.
    @Test func aStoppedBulkPullLeavesExactIndexesAndResumes() async throws {
        let harness = try await SimulatorHarness.start(contacts: 900)
        defer { Task { await harness.stop() } }
        let sync = Self.bulkSync(harness, from: 500)
        #expect(try await sync.runUntil(PageLimit(pages: 2)) >= 300)
        try BulkLoadTests.expectExact(harness.mirror)
        let summary = try await sync.run()
        #expect(summary.resumed)
        #expect(try await harness.differences() == [])
        try BulkLoadTests.expectExact(harness.mirror)
    }

    @Test func aCursorIntercomNoLongerAcceptsRestartsTheWalk() async throws {
        let harness = try await SimulatorHarness.start(contacts: 400)
        defer { Task { await harness.stop() } }
        try await harness.mirror.writer.write { db in
            try ContactMirror.setSyncState(.fullPullStartedAt, to: "1767225600", in: db)
            try ContactMirror.setSyncState(.fullPullGeneration, to: "1", in: db)
            try ContactMirror.setSyncState(.fullPullCursor, to: "expired-cursor", in: db)
        }
        let summary = try await harness.sync.run()
        #expect(summary.resumed)
        #expect(summary.fetched == 400)
        let log = await harness.workspace.requestLog()
        #expect(log.first?.path == "/me", "the workspace is checked first")
        #expect(log.first { $0.path == "/contacts" }?.status == 400, "the saved cursor was tried first")
        #expect(try await harness.differences() == [])
        #expect(try harness.mirror.syncState(.fullPullStartedAt) == nil)
    }
}

/// Cancels a pull once it has committed a number of pages.
final class PageLimit: Sendable {
    let pages: Int
    init(pages: Int) { self.pages = pages }
}

extension ContactSync {
    /// Runs an automatic sync and cancels it once `limit.pages` pages are committed; returns
    /// how many contacts were committed.
    func runUntil(_ limit: PageLimit, mode: Mode = .automatic) async throws -> Int {
        let task = Task {
            try await self.run(mode) { progress in
                if progress.fetched >= limit.pages * ContactSync.pageSize { withUnsafeCurrentTask { $0?.cancel() } }
            }
        }
        _ = await task.result
        return try await mirror.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM contacts") ?? 0 }
    }
}
