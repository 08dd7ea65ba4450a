import Foundation
import IntercomSimulator
import Testing

@testable import IntercomSync

/// Deletes staged offline: hidden at once, winning over pending edits, not undone by a pull,
/// undone by dropping the entry, and sent last.
@Suite struct OfflineDeleteTests {
    @Test func aDeleteHidesTheContactWinsOverEditsAndIsSentLast() async throws {
        let harness = try await SimulatorHarness.start(contacts: 4)
        defer { Task { await harness.stop() } }
        try await harness.sync.run(.full)
        let ids = try await harness.workspace.contactIDs()
        let time = harness.workspace.clock.now
        let edit = try harness.mirror.stageEdit(ContactPatch([.name: "Soon gone"]), to: ids[0], now: time)
        let note = try harness.mirror.stageNote("Last words", to: ids[0], now: time)
        let staged = try harness.mirror.stageDelete(contact: ids[0], now: time)
        #expect(staged.droppedEdits == [edit.seq!])
        #expect(try harness.mirror.contacts(matching: ContactQuery()).contacts.map(\.id).contains(ids[0]) == false)
        #expect(try harness.mirror.contact(id: ids[0])?.state == .tombstoned)
        let dropped = try #require(try harness.mirror.outboxEntry(seq: edit.seq!))
        #expect(dropped.state == .superseded && dropped.lastError?.code == "superseded_by_delete")
        #expect(try harness.mirror.pendingEdits(of: ids[0]).map(\.field) == [.name], "kept until the delete is sent")

        // A pull while the delete waits (its pages fetched after the delete) leaves the contact deleted.
        harness.workspace.clock.advance(by: 60)
        try await harness.sync.run(.full)
        #expect(try harness.mirror.contact(id: ids[0])?.state == .tombstoned)

        let summary = try await harness.flush()
        #expect(summary.contactsDeleted == 1 && summary.notesAdded == 1, "\(summary)")
        #expect(await harness.workspace.deletedIDs().contains(ids[0]))
        let order = await harness.workspace.requestLog().filter { $0.method != "GET" && !$0.path.hasSuffix("/search") }
            .map(\.method)
        #expect(order == ["POST", "DELETE"], "the note staged before goes first: \(order)")
        #expect(try harness.mirror.outboxEntry(seq: note.seq)?.state == .sent)
        #expect(try harness.mirror.outboxEntry(seq: staged.seq)?.state == .sent)
        #expect(try harness.mirror.pendingEdits(of: ids[0]).isEmpty, "gone with the contact")
    }

    /// Undoing a delete brings back the edits it had won over: they are queued again, and sent.
    @Test func droppingADeleteQueuesItsEditsAgain() async throws {
        let harness = try await SimulatorHarness.start(contacts: 2)
        defer { Task { await harness.stop() } }
        try await harness.sync.run(.full)
        let id = try #require(try await harness.workspace.contactIDs().first)
        let edit = try harness.mirror.stageEdit(ContactPatch([.name: "Survivor"]), to: id, now: 1)
        let delete = try harness.mirror.stageDelete(contact: id, now: 2)
        _ = try harness.mirror.dropOutboxEntry(seq: delete.seq, cascade: false)
        #expect(try harness.mirror.outboxEntry(seq: edit.seq!)?.state == .pending)
        #expect(try harness.mirror.contact(id: id)?.contact.name == "Survivor")
        let summary = try await harness.flush()
        #expect(summary.contactsUpdated == 1, "\(summary)")
        let onIntercom = try await harness.listedContacts()[id]
        #expect(onIntercom?["name"] == "Survivor")
    }

    /// A delete dropped after it superseded a conflict and a newer edit brings back the
    /// conflict as it was and one pending entry for the rest: the next flush makes no second
    /// conflict of the same field.
    @Test func droppingADeleteBringsBackAConflictAsAConflict() async throws {
        let harness = try await SimulatorHarness.start(contacts: 2)
        defer { Task { await harness.stop() } }
        try await harness.sync.run(.full)
        let id = try #require(try await harness.workspace.contactIDs().first)
        try harness.mirror.stageEdit(ContactPatch([.name: "Mine"]), to: id, now: 1)
        try await harness.workspace.edit(id: id, fieldsJSON: #"{"name":"Theirs"}"#)
        _ = try await harness.flush()
        let conflict = try #require(try harness.mirror.editConflicts().first)
        let newer = try harness.mirror.stageEdit(ContactPatch([.phone: "+15559990000"]), to: id, now: 2)
        let delete = try harness.mirror.stageDelete(contact: id, now: 3)
        _ = try harness.mirror.dropOutboxEntry(seq: delete.seq, cascade: false)
        #expect(try harness.mirror.outboxEntry(seq: conflict.seq)?.state == .conflict)
        #expect(try harness.mirror.outboxEntry(seq: newer.seq!)?.state == .pending)
        let summary = try await harness.flush()
        #expect(summary.contactsUpdated == 1 && summary.conflicts == 0, "\(summary)")
        #expect(try harness.mirror.editConflicts().map(\.seq) == [conflict.seq])
        #expect(try await harness.listedContacts()[id]?["phone"] == "+15559990000")
    }

    /// A create of the email of a contact still to be deleted is refused: Intercom would
    /// answer it with that contact, which the delete would then remove.
    @Test func aCreateOfTheEmailOfAContactToBeDeletedIsRefused() throws {
        let mirror = try ContactMirror.inMemory()
        _ = try mirror.upsertPage(
            #"{"type":"list","data":[{"type":"contact","id":"c1","role":"user","email":"a@example.com","created_at":1,"updated_at":2}]}"#,
            fetchedAt: 10)
        let delete = try mirror.stageDelete(contact: "c1", now: 20)
        let error = try #require(throws: OutboxError.self) {
            try mirror.stageContact(ContactDraft(email: "A@example.com"), now: 21)
        }
        #expect(error.description.contains("#\(delete.seq)"), "\(error)")
        _ = try mirror.dropOutboxEntry(seq: delete.seq, cascade: false)
        #expect(throws: OutboxError.self) { try mirror.stageContact(ContactDraft(email: "a@example.com"), now: 22) }
    }

    @Test func droppingADeleteBringsTheContactBack() async throws {
        let harness = try await SimulatorHarness.start(contacts: 2)
        defer { Task { await harness.stop() } }
        try await harness.sync.run(.full)
        let id = try #require(try await harness.workspace.contactIDs().first)
        let staged = try harness.mirror.stageDelete(contact: id, now: 1)
        #expect(try harness.mirror.contact(id: id)?.state == .tombstoned)
        _ = try harness.mirror.dropOutboxEntry(seq: staged.seq, cascade: false)
        #expect(try harness.mirror.contact(id: id)?.state == .synced)
        let summary = try await harness.flush()
        #expect(summary.contactsDeleted == 0)
        #expect(await harness.workspace.deletedIDs().isEmpty)
    }

    /// A contact already gone from Intercom counts as deleted; one not pushed yet is refused.
    @Test func aDeleteOfAContactAlreadyGoneSucceedsAndALocalOneIsRefused() async throws {
        let harness = try await SimulatorHarness.start(contacts: 2)
        defer { Task { await harness.stop() } }
        try await harness.sync.run(.full)
        let id = try #require(try await harness.workspace.contactIDs().first)
        _ = try harness.mirror.stageDelete(contact: id, now: 1)
        try await harness.workspace.delete(id: id)
        let summary = try await harness.flush()
        #expect(summary.contactsDeleted == 1 && summary.failed == 0, "\(summary)")

        let local = try harness.mirror.stageContact(ContactDraft(email: "local@example.com"), now: 1)
        let error = try #require(throws: OutboxError.self) { try harness.mirror.stageDelete(contact: local.localID, now: 1) }
        #expect(error.description.contains("outbox drop \(local.seq) --cascade"))
    }
}
