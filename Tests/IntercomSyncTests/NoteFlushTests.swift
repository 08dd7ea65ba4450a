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

    /// A note sent is kept with Intercom's id and author; one not sent yet is listed first,
    /// by its outbox entry, under the contact's Intercom id once its create was pushed.
    @Test func sentAndUnsentNotesAreListedWithTheContact() async throws {
        let harness = try await SimulatorHarness.start(contacts: 1)
        defer { Task { await harness.stop() } }
        try await harness.sync.run(.full)
        let time = harness.workspace.clock.now
        let created = try harness.mirror.stageContact(ContactDraft(email: "noted@example.com"), now: time)
        let first = try harness.mirror.stageNote("<p>First</p>", to: created.localID, adminID: "991267460", now: time)
        var listed = try harness.mirror.notes(ofContact: created.localID)
        #expect(listed.notes.map(\.outboxSeq) == [first.seq] && listed.notes.first?.id == nil)
        #expect(listed.notes.first?.outboxState == .pending && listed.notes.first?.authorID == "991267460")

        _ = try await harness.flush()
        let newID = try #require(try harness.mirror.outboxEntries().first { $0.kind == .createContact }?.remoteID)
        let second = try harness.mirror.stageNote("Second", to: newID, now: time)
        listed = try harness.mirror.notes(ofContact: created.localID)
        #expect(listed.notes.map(\.body) == ["Second", "<p>First</p>"], "the unsent first, by either id")
        #expect(listed.notes[0].outboxSeq == second.seq)
        let sent = listed.notes[1]
        #expect(sent.id != nil && sent.outboxSeq == nil && sent.authorName != nil && sent.authorID == "991267460")
    }

    /// A contact's version lists its notes' ids only: a revalidation reads the notes the mirror
    /// lacks (once), keeps them across pulls, and forgets those deleted on Intercom. A cached
    /// read asks nothing.
    @Test func aRefreshReadsTheNotesTheMirrorLacks() async throws {
        let harness = try await SimulatorHarness.start(contacts: 2)
        defer { Task { await harness.stop() } }
        let id = try #require(try await harness.workspace.contactIDs().first)
        for text in ["one", "two", "three"] {
            _ = try await harness.client.sendJSON("POST", "/contacts/\(id)/notes", json: #"{"body":"\#(text)"}"#)
        }
        try await harness.sync.run(.full)
        var notes = try harness.mirror.notes(ofContact: id)
        #expect(notes.totalOnIntercom == 3 && notes.notes.isEmpty && notes.missing == 3)
        #expect(try harness.mirror.lacksNotes(ofContact: id))

        func noteReads() async -> Int {
            await harness.workspace.requestLog().filter { $0.method == "GET" && $0.path.hasSuffix("/notes") }.count
        }
        _ = try await harness.sync.getContact(id, freshness: .cached)
        #expect(await noteReads() == 0)
        _ = try await harness.sync.getContact(id, freshness: .refresh)
        #expect(await noteReads() == 1)
        notes = try harness.mirror.notes(ofContact: id)
        #expect(notes.notes.map(\.body) == ["three", "two", "one"] && notes.missing == 0)
        _ = try await harness.sync.getContact(id, freshness: .refresh)
        #expect(await noteReads() == 1, "nothing new to read")

        try await harness.sync.run(.full)
        #expect(try harness.mirror.notes(ofContact: id).notes.count == 3, "a pull keeps them")

        try await harness.mirror.storeNotes(
            [try JSONValue(jsonText: #"{"type":"note","id":"gone","body":"deleted on Intercom","created_at":1}"#)], of: id,
            complete: false)
        #expect(try harness.mirror.lacksNotes(ofContact: id))
        _ = try await harness.sync.getContact(id, freshness: .refresh)
        #expect(try harness.mirror.notes(ofContact: id).notes.map(\.id).contains("gone") == false)
        #expect(await noteReads() == 2)
    }

    /// A note whose answer was lost is unknown until Intercom lists it: a refresh that reads
    /// the contact's notes finds it there, and the entry is sent.
    @Test func anUnknownNoteThatIntercomListsBecomesSent() async throws {
        let harness = try await SimulatorHarness.start(contacts: 1)
        defer { Task { await harness.stop() } }
        try await harness.sync.run(.full)
        let id = try #require(try await harness.workspace.contactIDs().first)
        let staged = try harness.mirror.stageNote("Reached it after all", to: id, now: 1)
        _ = try await harness.mirror.prepareNote(seq: staged.seq, now: 2)
        _ = try await harness.client.sendJSON("POST", "/contacts/\(id)/notes", json: #"{"body":"Reached it after all"}"#)
        _ = try await harness.flush()
        #expect(try harness.mirror.outboxEntry(seq: staged.seq)?.state == .unknown)
        _ = try await harness.sync.getContact(id, freshness: .refresh)
        let entry = try #require(try harness.mirror.outboxEntry(seq: staged.seq))
        #expect(entry.state == .sent && entry.remoteID != nil, "\(entry)")
        #expect(try harness.mirror.notes(ofContact: id).notes.map(\.body) == ["Reached it after all"], "listed once")
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
