import Foundation
import GRDB
import SyntheticData
import Testing

@testable import IntercomSync

@Suite struct MirrorUpsertTests {
    let pages = PageFactory()

    @Test func storesAPageAndReportsItsCursor() throws {
        let mirror = try ContactMirror.inMemory()
        let result = try mirror.upsertPage(try Fixtures.text("contacts/list-page-1-of-3.json"), fetchedAt: 500)
        #expect(result == PageUpsert(received: 3, written: 3, nextCursor: "WzE3MzQ1NDAwMDAwMDAsIjY3NjJmMGQwIl0=", totalCount: 7))
        #expect(try mirror.count() == 3)
        let zoe = try #require(try mirror.contact(id: "6762f0d01bb69f9f2193bb90"))
        #expect(zoe.contact.avatarURL == "https://example.com/zoe.png")
        #expect(zoe.fetchedAt == 500)
    }

    @Test func emptyListPage() throws {
        let mirror = try ContactMirror.inMemory()
        let result = try mirror.upsertPage(try Fixtures.text("contacts/list-empty-2.16.json"), fetchedAt: 1)
        #expect(result == PageUpsert(received: 0, written: 0, nextCursor: nil, totalCount: 0))
    }

    @Test func reapplyingTheSamePageChangesNothing() throws {
        let mirror = try ContactMirror.inMemory()
        let page = pages.page(0..<40)
        #expect(try mirror.upsertPage(page, fetchedAt: 1).written == 40)
        let before = try mirror.writer.read { db in try Row.fetchAll(db, sql: "SELECT * FROM contacts ORDER BY id") }
        #expect(try mirror.upsertPage(page, fetchedAt: 2).written == 0)
        let after = try mirror.writer.read { db in try Row.fetchAll(db, sql: "SELECT * FROM contacts ORDER BY id") }
        #expect(before == after)
    }

    /// Batches index their new rows in one statement; single writes go through the trigger.
    /// Either way the FTS index must match the table exactly.
    @Test func fullTextIndexStaysExactThroughBatchesUpdatesAndSingleWrites() throws {
        let mirror = try ContactMirror.inMemory()
        _ = try mirror.upsertPages([pages.page(0..<30), pages.page(30..<60)], fetchedAt: 1)
        try mirror.writer.write { db in
            try db.execute(sql: "UPDATE contacts SET name = 'Zébulon Quistreau' WHERE row_id = 3")
            try db.execute(
                sql: """
                    INSERT INTO contacts (id, role, name, created_at, updated_at, body, state)
                    VALUES ('local-1', 'lead', 'Ophélie Marchetti', 1, 1, '{}', 'pending')
                    """)
        }
        _ = try mirror.upsertPage(pages.page(55..<70), fetchedAt: 2)
        try mirror.writer.write { db in
            try db.execute(sql: "INSERT INTO contacts_fts(contacts_fts, rank) VALUES ('integrity-check', 1)")
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM sync_state WHERE key = 'fts.deferred'") == 0)
        }
        for (word, expected) in [("zebul", 1), ("ophel", 1)] {
            var query = ContactQuery()
            query.search = word
            #expect(try mirror.contacts(matching: query).contacts.count == expected, "\(word)")
        }
        var everyone = ContactQuery()
        everyone.search = pages.generator.contact(at: 65).email
        #expect(try mirror.contacts(matching: everyone).contacts.map(\.id).contains(pages.generator.contact(at: 65).id))
    }

    /// A batch that fails part-way inside a transaction its caller then commits (no savepoint
    /// rolls it back) still leaves its rows indexed and the trigger back on.
    @Test func aBatchThatThrowsStillLeavesTheIndexExact() throws {
        struct Stop: Error {}
        let mirror = try ContactMirror.inMemory()
        try mirror.writer.write { db in
            do {
                _ = try ContactMirror.indexingFTSAtEnd(in: db) {
                    try db.execute(
                        sql: """
                            INSERT INTO contacts (id, role, name, created_at, updated_at, body, state)
                            VALUES ('local-1', 'lead', 'Quirinus Halvorsen', 1, 1, '{}', 'pending')
                            """)
                    throw Stop()
                }
            } catch is Stop {}
            try db.execute(
                sql: """
                    INSERT INTO contacts (id, role, name, created_at, updated_at, body, state)
                    VALUES ('local-2', 'lead', 'Wilhelmina Otterbein', 1, 1, '{}', 'pending')
                    """)
        }
        try mirror.writer.write { db in
            try db.execute(sql: "INSERT INTO contacts_fts(contacts_fts, rank) VALUES ('integrity-check', 1)")
        }
        for word in ["quirin", "otterb"] {
            var query = ContactQuery()
            query.search = word
            #expect(try mirror.contacts(matching: query).contacts.count == 1, "\(word)")
        }
    }

    /// A page that names one contact twice (it changed while the pages were read) keeps the
    /// newest version, and the FTS index stays exact.
    @Test func aContactTwiceInOneBatchKeepsItsNewestVersion() throws {
        let mirror = try ContactMirror.inMemory()
        let first = pages.generator.contact(at: 1)
        let twice = pages.page(0..<3) { $0.name = "Older Name" }
        let newer = pages.page(1..<2) {
            $0.name = "Newer Name"; $0.updatedAt += 60
        }
        // One page whose data holds contacts 0, 1, 2 and then 1 again, newer.
        let older = try JSONValue(jsonText: twice)
        let later = try JSONValue(jsonText: newer)
        guard case .object(var fields) = older, let data = older["data"]?.elements, let extra = later["data"]?.elements
        else {
            Issue.record("unexpected page shape")
            return
        }
        fields["data"] = .array(data + extra)
        #expect(try mirror.upsertPage(JSONValue.object(fields).jsonText, fetchedAt: 1).written == 3)
        #expect(try mirror.contact(id: first.id)?.contact.name == "Newer Name")
        try mirror.writer.write { db in
            try db.execute(sql: "INSERT INTO contacts_fts(contacts_fts, rank) VALUES ('integrity-check', 1)")
        }
        var query = ContactQuery()
        query.search = "newer"
        #expect(try mirror.contacts(matching: query).contacts.map(\.id) == [first.id])
    }

    @Test func newerVersionReplacesOlderIsIgnored() throws {
        let mirror = try ContactMirror.inMemory()
        _ = try mirror.upsertPage(pages.page(0..<5), fetchedAt: 1)
        let renamed = pages.page(0..<5) {
            $0.name = "Renamed"; $0.updatedAt += 10
        }
        #expect(try mirror.upsertPage(renamed, fetchedAt: 2).written == 5)
        let stale = pages.page(0..<5) {
            $0.name = "Stale"; $0.updatedAt += 5
        }
        #expect(try mirror.upsertPage(stale, fetchedAt: 3).written == 0)
        #expect(try mirror.count("SELECT count(*) FROM contacts WHERE name = 'Renamed' AND fetched_at = 2") == 5)
        // Full-text index follows the rename.
        var query = ContactQuery()
        query.search = "renamed"
        #expect(try mirror.all(query).count == 5)
    }

    @Test func sameUpdatedAtWithDifferentBodyIsTaken() throws {
        let mirror = try ContactMirror.inMemory()
        _ = try mirror.upsertPage(pages.page(0..<1), fetchedAt: 1)
        let changed = pages.page(0..<1) { $0.city = "Reykjavík" }
        #expect(try mirror.upsertPage(changed, fetchedAt: 2).written == 1)
    }

    /// An update writes only the columns that changed: one that became null is cleared, a new
    /// name reaches the name index and FTS, and what did not change stays as it was.
    @Test func anUpdateWritesEveryChangedColumnAndOnlyThose() throws {
        let mirror = try ContactMirror.inMemory()
        let original = PageFactory().generator.contact(at: 0)
        _ = try mirror.upsertPage(pages.page(0..<1) { $0.phone = "+15550100" }, fetchedAt: 1)
        let edit: (inout SyntheticContact) -> Void = { contact in
            contact.phone = nil
            contact.name = "Zephyrine Quillfeather"
            contact.updatedAt += 60
        }
        var expected = original
        edit(&expected)
        #expect(try mirror.upsertPage(pages.page(0..<1, edit: edit), fetchedAt: 2).written == 1)
        let stored = try #require(try mirror.contact(id: original.id))
        #expect(stored.contact.phone == nil)
        #expect(stored.contact.name == "Zephyrine Quillfeather")
        #expect(stored.contact.email == original.email)
        #expect(stored.contact.updatedAt == original.updatedAt + 60)
        #expect(stored.body == expected.intercomJSON())
        var byNewName = ContactQuery()
        byNewName.search = "zephyr"
        #expect(try mirror.contacts(matching: byNewName).contacts.map(\.id) == [original.id])
        let oldTerm = String(original.name.split(separator: " ").last ?? "").lowercased()
        let oldNameHits = try mirror.count(
            "SELECT count(*) FROM contacts_fts WHERE contacts_fts MATCH ?", arguments: ["name:\"\(oldTerm)\""])
        #expect(oldNameHits == 0, "the old name left the index")
        var byEmail = ContactQuery()
        byEmail.email = original.email.uppercased()
        #expect(try mirror.contacts(matching: byEmail).contacts.map(\.id) == [original.id])
    }

    @Test func pendingContactsAreNeverOverwritten() throws {
        let mirror = try ContactMirror.inMemory()
        _ = try mirror.upsertPage(pages.page(0..<3), fetchedAt: 1)
        let id = PageFactory().generator.contact(at: 1).id
        try mirror.writer.write { db in
            try db.execute(sql: "UPDATE contacts SET state = 'pending', name = 'Local edit' WHERE id = ?", arguments: [id])
        }
        let newer = pages.page(0..<3) {
            $0.name = "Server edit"; $0.updatedAt += 100
        }
        #expect(try mirror.upsertPage(newer, fetchedAt: 2).written == 2)
        let kept = try #require(try mirror.contact(id: id))
        #expect(kept.state == .pending)
        #expect(kept.contact.name == "Local edit")
    }

    @Test func stalePageDoesNotResurrectATombstone() throws {
        let mirror = try ContactMirror.inMemory()
        _ = try mirror.upsertPage(pages.page(0..<2), fetchedAt: 1)
        try mirror.writer.write { db in
            for id in try String.fetchAll(db, sql: "SELECT id FROM contacts") {
                try ContactMirror.tombstone(id: id, at: 5, in: db)
            }
        }
        // Fetched before the contacts were found gone: stale, even with a newer version.
        let newer = pages.page(0..<2) { $0.updatedAt += 1 }
        #expect(try mirror.upsertPage(newer, fetchedAt: 4).written == 0)
        #expect(try mirror.upsertPage(pages.page(0..<2), fetchedAt: 5).written == 0)
        #expect(try mirror.count("SELECT count(*) FROM contacts WHERE state = 'tombstoned'") == 2)
        // Seen alive in an answer fetched later: the contact is back (it was unarchived).
        #expect(try mirror.upsertPage(pages.page(0..<2), fetchedAt: 6).written == 2)
        #expect(try mirror.count("SELECT count(*) FROM contacts WHERE state = 'synced'") == 2)
    }

    @Test func malformedContactRejectsThePageAndNamesIt() throws {
        let mirror = try ContactMirror.inMemory()
        _ = try mirror.upsertPage(pages.page(0..<3), fetchedAt: 1)
        let error = try #require(throws: MirrorError.self) {
            try mirror.upsertPage(try Fixtures.text("malformed/list-second-contact-missing-id.json"), fetchedAt: 2)
        }
        #expect(error.kind == .malformedResponse)
        #expect(error.detail.contains("contact #2"))
        #expect(error.detail.contains("\"id\""))
        #expect(try mirror.count() == 3)
    }

    @Test(arguments: ["malformed/list-truncated.json", "contacts/get-contact-2.16.json"])
    func notAListPageIsRejected(fixture: String) throws {
        let mirror = try ContactMirror.inMemory()
        let error = try #require(throws: MirrorError.self) {
            try mirror.upsertPage(try Fixtures.text(fixture), fetchedAt: 2)
        }
        #expect(error.kind == .malformedResponse)
        #expect(try mirror.count() == 0)
    }

    @Test func truncatedSingleContactIsRejected() throws {
        let mirror = try ContactMirror.inMemory()
        #expect(throws: MirrorError.self) {
            try mirror.writer.write { db in
                try ContactMirror.upsertContact(#"{"type":"contact","id":"x","role":"us"#, fetchedAt: 1, in: db)
            }
        }
    }

    @Test func batchOfPagesIsOneTransaction() throws {
        let mirror = try ContactMirror.inMemory()
        let good = pages.page(0..<10)
        #expect(throws: MirrorError.self) {
            try mirror.upsertPages([good, try Fixtures.text("malformed/list-truncated.json")], fetchedAt: 1)
        }
        #expect(try mirror.count() == 0)
        #expect(try mirror.upsertPages([good, pages.page(10..<20)], fetchedAt: 1).written == 20)
    }
}
