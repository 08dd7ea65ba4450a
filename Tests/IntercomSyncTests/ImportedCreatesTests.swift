import Foundation
import GRDB
import IntercomJSON
import Testing

@testable import IntercomSync

/// Imported contacts wait in `imported_creates` until a flush (or a message to one of them)
/// writes their create entries: one each, never two, with the payload `contacts create` sends.
@Suite struct ImportedCreatesTests {
    static let importedAt = 1_767_225_600

    /// Writes every waiting create entry, as a flush does first.
    static func queueAll(_ mirror: ContactMirror, limit: Int = 5_000, now: Int = importedAt + 60) throws {
        while try mirror.writer.write({ db in try ContactMirror.queueImportedCreates(limit: limit, now: now, in: db) }) {}
    }

    /// `count` rows, `batchSize` a transaction; row 3 has every field and two custom attributes.
    static func importRows(_ count: Int, batchSize: Int, into mirror: ContactMirror) throws {
        var lines = ["email,name,phone,role,user id,avatar,plan,seats"]
        for index in 0..<count {
            lines.append(
                index == 3
                    ? #"zoe@example.com,"Zoë O'Neil, Jr.",+44 20 7946 0958,lead,ext-3,https://example.com/z.png,pro,12"#
                    : "p\(index)@example.com,Person \(index),,,,,,")
        }
        var options = ContactImport.Options()
        options.batchSize = batchSize
        options.customAttributes = true
        var reader = CSVReader(bytes: Array(lines.joined(separator: "\n").utf8))
        let summary = try ContactImport(mirror: mirror, options: options).run(&reader, now: importedAt)
        #expect(summary.imported == count)
    }

    static func createEntries(_ mirror: ContactMirror) throws -> [OutboxEntry] {
        try mirror.outboxEntries().filter { $0.kind == .createContact }
    }

    @Test func anImportWritesContactsAndCountsTheirCreatesAsPending() throws {
        let mirror = try ContactMirror.inMemory()
        try Self.importRows(250, batchSize: 100, into: mirror)
        #expect(try Self.createEntries(mirror).isEmpty, "no entry is written while the file is read")
        #expect(try mirror.importedCreatesWaiting() == 250)
        #expect(try mirror.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM imported_creates") } == 3)
        let status = try mirror.status()
        #expect(status.outbox.pending == 250 && status.contacts.pending == 250)
    }

    /// Chunks that end exactly on a batch's last row, and chunks that straddle batches, both
    /// give one entry per contact in row order, each with the payload `contacts create` sends.
    @Test(arguments: [100, 7, 5_000])
    func queueingWritesOneEntryPerContactWithItsRequest(limit: Int) throws {
        let mirror = try ContactMirror.inMemory()
        try Self.importRows(250, batchSize: 100, into: mirror)
        try Self.queueAll(mirror, limit: limit)
        let entries = try Self.createEntries(mirror)
        #expect(entries.count == 250)
        #expect(Set(entries.compactMap(\.contactID)).count == 250)
        #expect(try mirror.importedCreatesWaiting() == 0)
        #expect(try mirror.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM imported_creates") } == 0)
        #expect(entries.allSatisfy { $0.state == .pending && $0.createdAt == Self.importedAt })
        let zoe = try #require(entries.first { $0.payload.contains("ext-3") })
        let draft = ContactDraft(
            role: .lead, email: "zoe@example.com", name: "Zoë O'Neil, Jr.", phone: "+44 20 7946 0958",
            avatar: "https://example.com/z.png", externalID: "ext-3",
            customAttributes: ["plan": "pro", "seats": "12"])
        #expect(zoe.payload == draft.requestBodyText)
        let emails = try entries.map { entry in try mirror.contact(id: entry.contactID!)?.contact.email }
        #expect(emails.prefix(3) == ["p0@example.com", "p1@example.com", "p2@example.com"], "in row order")
        #expect(try mirror.status().outbox.pending == 250)
    }

    /// A message to an imported contact writes that contact's create at once, for the message to
    /// wait for; the later queueing does not write a second one.
    @Test func aMessageToAnImportedContactQueuesItsCreateFirst() throws {
        let mirror = try ContactMirror.inMemory()
        try Self.importRows(10, batchSize: 100, into: mirror)
        let message = try mirror.stageMessage(MessageDraft(kind: .inApp, body: "Hi", to: "p5@example.com"), now: 1)
        let create = try #require(try Self.createEntries(mirror).first)
        #expect(message.waitsFor == create.seq)
        #expect(try mirror.contact(id: create.contactID!)?.contact.email == "p5@example.com")
        #expect(try mirror.importedCreatesWaiting() == 9)
        try Self.queueAll(mirror)
        let entries = try Self.createEntries(mirror)
        #expect(entries.count == 10 && Set(entries.compactMap(\.contactID)).count == 10)
    }

    /// A contact staged with its own entry inside an import's row range (another process, mid-import)
    /// keeps that one entry.
    @Test func aContactWithItsOwnEntryInsideARangeKeepsOnlyThatOne() throws {
        let mirror = try ContactMirror.inMemory()
        try mirror.writer.write { db in
            let first = try ContactMirror.insertLocalContact(ContactDraft(email: "a@example.com"), now: 1, in: db)
            _ = try ContactMirror.stageContact(
                ContactDraft(email: "b@example.com"), allowingDuplicateEmail: false, now: 1, in: db)
            let last = try ContactMirror.insertLocalContact(ContactDraft(email: "c@example.com"), now: 1, in: db)
            try ContactMirror.noteImportedCreates(
                firstRowID: first.rowID, lastRowID: last.rowID, count: 2, now: 1, in: db)
        }
        #expect(try mirror.status().outbox.pending == 3)
        try Self.queueAll(mirror)
        let entries = try Self.createEntries(mirror)
        #expect(entries.count == 3 && Set(entries.compactMap(\.contactID)).count == 3)
    }

    /// A range left behind whose rows are gone, and an import whose row_ids start where it did:
    /// the ranges merge, and each new contact still gets one entry.
    @Test func aRangeAtAReusedRowIDMerges() throws {
        let mirror = try ContactMirror.inMemory()
        try Self.importRows(5, batchSize: 100, into: mirror)
        try mirror.writer.write { db in
            for id in try String.fetchAll(db, sql: "SELECT id FROM contacts") {
                _ = try ContactMirror.queueImportedCreate(contactID: id, now: 1, in: db)
            }
            try db.execute(sql: "DELETE FROM outbox; DELETE FROM contacts")
        }
        try Self.importRows(8, batchSize: 100, into: mirror)
        #expect(try mirror.importedCreatesWaiting() == 8)
        try Self.queueAll(mirror)
        let entries = try Self.createEntries(mirror)
        #expect(entries.count == 8 && Set(entries.compactMap(\.contactID)).count == 8)
    }
}
