import Foundation
import IntercomSimulator
import Testing

@testable import IntercomSync

/// Archives and unarchives staged offline: the mirror hides or shows the contact at once, a
/// pull does not undo either while it waits, and the flush applies them in queue order.
@Suite struct OfflineArchiveTests {
    @Test func anArchiveHidesTheContactAndAnUnarchiveBringsItBack() async throws {
        let harness = try await SimulatorHarness.start(contacts: 4)
        defer { Task { await harness.stop() } }
        try await harness.sync.run(.full)
        let ids = try await harness.workspace.contactIDs()
        let time = harness.workspace.clock.now
        let archived = try harness.mirror.stageArchive(contact: ids[0], archive: true, now: time)
        #expect(archived.seq != nil && archived.withdrew == nil)
        #expect(!(try harness.mirror.contacts(matching: ContactQuery()).contacts.map(\.id).contains(ids[0])))
        var onlyArchived = ContactQuery(states: [.tombstoned])
        onlyArchived.archivedOnly = true
        #expect(try harness.mirror.contacts(matching: onlyArchived).contacts.map(\.id) == [ids[0]])

        harness.workspace.clock.advance(by: 60)
        try await harness.sync.run(.full)
        #expect(try harness.mirror.contact(id: ids[0])?.state == .tombstoned, "a pull does not undo a waiting archive")

        let summary = try await harness.flush()
        #expect(summary.contactsArchived == 1, "\(summary)")
        #expect(await harness.workspace.archivedIDs() == [ids[0]])

        // Archived on Intercom now: an unarchive shows it at once, and a pull while it waits
        // (which cannot see it, nor GET it) does not hide it again.
        let unarchived = try harness.mirror.stageArchive(contact: ids[0], archive: false, now: time + 60)
        #expect(unarchived.seq != nil)
        #expect(try harness.mirror.contact(id: ids[0])?.state == .synced)
        #expect(try harness.mirror.contacts(matching: onlyArchived).contacts.isEmpty)
        harness.workspace.clock.advance(by: 60)
        try await harness.sync.run(.reconcile)
        #expect(try harness.mirror.contact(id: ids[0])?.state == .synced)
        let second = try await harness.flush()
        #expect(second.contactsArchived == 1)
        #expect(await harness.workspace.archivedIDs().isEmpty)
    }

    /// An unarchive of a contact a pull tombstoned, which Intercom deleted rather than
    /// archived, fails with why and leaves the contact hidden.
    @Test func anUnarchiveOfADeletedContactFailsAndKeepsItHidden() async throws {
        let harness = try await SimulatorHarness.start(contacts: 2)
        defer { Task { await harness.stop() } }
        try await harness.sync.run(.full)
        let id = try #require(try await harness.workspace.contactIDs().first)
        try await harness.workspace.delete(id: id)
        try await harness.mirror.tombstone(id: id, at: harness.now)
        let staged = try harness.mirror.stageArchive(contact: id, archive: false, now: harness.now)
        #expect(try harness.mirror.contact(id: id)?.state == .synced, "shown again at once")
        let summary = try await harness.flush()
        #expect(summary.failed == 1 && summary.contactsArchived == 0, "\(summary)")
        let seq = try #require(staged.seq)
        let entry = try #require(try harness.mirror.outboxEntry(seq: seq))
        #expect(entry.state == .failed && entry.lastError?.message.contains("gone from Intercom") == true)
        #expect(try harness.mirror.contact(id: id)?.state == .tombstoned)
    }

    /// An unarchive goes before the edits and notes staged after it; an edit that met an
    /// archived contact keeps its edits, and `outbox retry` sends them once it is back.
    @Test func anUnarchiveGoesFirstAndARefusedEditIsKeptForARetry() async throws {
        let harness = try await SimulatorHarness.start(contacts: 3)
        defer { Task { await harness.stop() } }
        try await harness.sync.run(.full)
        let ids = try await harness.workspace.contactIDs()
        _ = try harness.mirror.stageArchive(contact: ids[0], archive: true, now: 1)
        _ = try await harness.flush()
        _ = try harness.mirror.stageArchive(contact: ids[0], archive: false, now: 2)
        try harness.mirror.stageEdit(ContactPatch([.name: "Back Again"]), to: ids[0], now: 3)
        _ = try harness.mirror.stageNote("Welcome back", to: ids[0], now: 4)
        let summary = try await harness.flush()
        #expect(summary.failed == 0 && summary.contactsUpdated == 1 && summary.notesAdded == 1, "\(summary)")
        #expect(try await harness.listedContacts()[ids[0]]?["name"] == "Back Again")

        let refused = try harness.mirror.stageEdit(ContactPatch([.name: "Retried"]), to: ids[1], now: 5)
        try await harness.workspace.archive(id: ids[1])
        let failed = try await harness.flush()
        #expect(failed.failed == 1, "\(failed)")
        #expect(try harness.mirror.pendingEdits(of: ids[1]).map(\.field) == [.name], "the edit is kept")
        try await harness.workspace.archive(id: ids[1], false)
        try harness.mirror.retryOutboxEntry(seq: refused.seq!, now: 6)
        let retried = try await harness.flush()
        #expect(retried.contactsUpdated == 1, "\(retried)")
        #expect(try await harness.listedContacts()[ids[1]]?["name"] == "Retried")
    }

    @Test func anUnarchiveTakesBackAnArchiveNotSentYet() async throws {
        let mirror = try ContactMirror.inMemory()
        _ = try mirror.upsertPage(
            #"{"type":"list","data":[{"type":"contact","id":"c1","role":"user","email":"a@example.com","created_at":1,"updated_at":2}]}"#,
            fetchedAt: 10)
        let archived = try mirror.stageArchive(contact: "a@example.com", archive: true, now: 20)
        let undone = try mirror.stageArchive(contact: "c1", archive: false, now: 21)
        #expect(undone.withdrew == archived.seq && undone.seq == nil)
        #expect(try mirror.outboxEntries().isEmpty)
        #expect(try mirror.contact(id: "c1")?.state == .synced)
        #expect(throws: OutboxError.self) { try mirror.stageArchive(contact: "c1", archive: false, now: 22) }
    }
}
