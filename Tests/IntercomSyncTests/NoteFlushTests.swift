import Foundation
import IntercomSimulator
import Testing

@testable import IntercomSync

/// Notes written offline: queued, sent at most once, after their contact's create when it was
/// made offline.
@Suite struct NoteFlushTests {
    static func notes(_ harness: SimulatorHarness, of id: String) async throws -> [String] {
        let answer = try await harness.client.sendJSON("GET", "/contacts/\(id)/notes")
        guard case .array(let items)? = try JSONValue(jsonText: answer.text)["data"] else { return [] }
        return items.compactMap { $0["body"]?.string }
    }

    @Test func notesAreWrittenOnceAfterTheirContactsCreate() async throws {
        let harness = try await SimulatorHarness.start(contacts: 3)
        defer { Task { await harness.stop() } }
        try await harness.sync.run(.full)
        let existing = try #require(try await harness.workspace.contactIDs().first)
        let time = harness.workspace.clock.now
        let first = try harness.mirror.stageNote("<p>Called, no answer</p>", to: existing, now: time)
        #expect(first.waitsFor == nil && first.contactID == existing)
        let created = try harness.mirror.stageContact(ContactDraft(email: "noted@example.com"), now: time)
        let second = try harness.mirror.stageNote("Welcome call done", to: "noted@example.com", adminID: "991267460", now: time)
        #expect(second.waitsFor == created.seq && second.contactID == created.localID)

        let summary = try await harness.flush()
        #expect(summary.notesAdded == 2 && summary.contactsCreated == 1, "\(summary)")
        #expect(try await Self.notes(harness, of: existing) == ["<p>Called, no answer</p>"])
        let newID = try #require(try harness.mirror.outboxEntries().first { $0.kind == .createContact }?.remoteID)
        #expect(try await Self.notes(harness, of: newID) == ["Welcome call done"])
        let entries = try harness.mirror.outboxEntries().filter { $0.kind == .addNote }
        #expect(entries.allSatisfy { $0.state == .sent && $0.remoteID != nil })

        let again = try await harness.flush()
        #expect(again.notesAdded == 0)
        #expect(try await Self.notes(harness, of: existing).count == 1, "sent once")
    }

    /// A note found in flight after a crash may have reached Intercom: it becomes unknown and is
    /// not sent again on its own.
    @Test func aNoteInterruptedInFlightBecomesUnknown() async throws {
        let harness = try await SimulatorHarness.start(contacts: 1)
        defer { Task { await harness.stop() } }
        try await harness.sync.run(.full)
        let id = try #require(try await harness.workspace.contactIDs().first)
        let staged = try harness.mirror.stageNote("Maybe sent", to: id, now: 1)
        _ = try await harness.mirror.prepareNote(seq: staged.seq, now: 2)
        let summary = try await harness.flush()
        #expect(summary.interrupted == [staged.seq] && summary.notesAdded == 0)
        #expect(try harness.mirror.outboxEntries().first?.state == .unknown)
        #expect(try await Self.notes(harness, of: id).isEmpty)
    }

    @Test func anEmptyNoteOrABadAdminIsRefused() throws {
        let mirror = try ContactMirror.inMemory()
        _ = try mirror.stageContact(ContactDraft(email: "a@example.com"), now: 1)
        let error = try #require(throws: DraftError.self) {
            try mirror.stageNote("  \n", to: "a@example.com", adminID: "ada", now: 1)
        }
        #expect(error.problems.map(\.field) == ["body", "admin_id"])
        #expect(throws: DraftError.self) {
            try mirror.stageNote(String(repeating: "x", count: 65_537), to: "a@example.com", now: 1)
        }
        #expect(throws: OutboxError.self) { try mirror.stageNote("hi", to: "nobody@example.com", now: 1) }
        #expect(try mirror.outboxEntries().map(\.kind) == [.createContact])
    }
}
