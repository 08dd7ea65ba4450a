import Foundation
import GRDB
import Testing

@testable import IntercomSync

/// The notes a team's puller publishes from (`ContactMirror.noteChangesForPublishing`): every
/// contact a write changes is handed over once, with its links, whatever the mirror does to
/// its connection meanwhile.
@Suite struct PublishNotesTests {
    let pages = PageFactory()

    /// The end of a bulk load changes `temp_store`, and SQLite drops a connection's temporary
    /// tables and triggers with it: the notes are carried over, so the contacts noted before
    /// and during the load are all handed over after it, none reported lost.
    @Test func notesOutliveTheEndOfABulkLoad() async throws {
        let mirror = try ContactMirror.inMemory()
        try await mirror.noteChangesForPublishing()
        _ = try mirror.upsertPage(pages.page(0..<3), fetchedAt: 1)
        try await mirror.bulkLoading {
            _ = try mirror.upsertPage(pages.page(3..<8), fetchedAt: 2)
        }
        let taken = try await mirror.takeChangedContacts(limit: 5)
        #expect(!taken.lost, "the load's end kept the notes")
        #expect(!taken.drained && taken.contacts.count == 5)
        let rest = try await mirror.takeChangedContacts(limit: 5)
        #expect(!rest.lost && rest.drained && rest.contacts.count == 3)
        let ids = Set((taken.contacts + rest.contacts).map(\.id))
        #expect(ids == Set(pages.generator.contacts(0..<8).map(\.id)))

        // Notes go on after the load: a write noted, the queue drained by one hand-over.
        _ = try mirror.upsertPage(pages.page(0..<1) { $0.updatedAt += 10 }, fetchedAt: 3)
        let after = try await mirror.takeChangedContacts(limit: 5)
        #expect(!after.lost && after.drained && after.contacts.map(\.id) == [pages.generator.contact(at: 0).id])
    }

    /// A contact written during a bulk load is handed over with the links its body lists, which
    /// the load holds aside until its end; moving them into place then is no change to publish.
    @Test func aBulkLoadsLinksGoWithTheirContactsOnce() async throws {
        let mirror = try ContactMirror.inMemory()
        try await mirror.noteChangesForPublishing()
        let tagged = pages.page(0..<4) { contact in
            contact.tagIDs = ["tag-1", "tag-2"]
            contact.companyIDs = ["company-1"]
        }
        let during = try await mirror.bulkLoading { () async throws -> (contacts: [UpstreamContact], drained: Bool, lost: Bool) in
            _ = try mirror.upsertPage(tagged, fetchedAt: 1)
            return try await mirror.takeChangedContacts(limit: 100)
        }
        #expect(during.contacts.count == 4)
        for contact in during.contacts {
            #expect(
                Set(contact.links ?? [])
                    == [
                        UpstreamLink(kind: .tag, target: "tag-1"), UpstreamLink(kind: .tag, target: "tag-2"),
                        UpstreamLink(kind: .company, target: "company-1"),
                    ], "\(contact.id)")
            #expect(contact.columns?.email == pages.generator.contacts(0..<4).first { $0.id == contact.id }?.email)
        }
        #expect(try mirror.count("SELECT count(*) FROM contact_links") == 12, "the load's end moved the links into place")
        let after = try await mirror.takeChangedContacts(limit: 100)
        #expect(!after.lost && after.contacts.isEmpty, "and noted nothing: what moved was published already")
    }
}
