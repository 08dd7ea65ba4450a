import Foundation
import GRDB
import IntercomSimulator
import Testing

@testable import IntercomSync

/// Tags, companies and segments: pulled with the contacts, kept current, and queried offline.
@Suite struct LinksSyncTests {
    static func seeded(contacts: Int = 1_200, companies: Int = 40) async throws -> SimulatorHarness {
        try await SimulatorHarness.start(contacts: contacts) { configuration in
            configuration.seedTags = 20
            configuration.seedCompanies = companies
        }
    }

    /// The mirror's links, as the simulator's relations are shaped: contact id → (tag ids,
    /// company ids), for synced contacts with any.
    static func mirroredRelations(_ mirror: ContactMirror) throws -> [String: (tags: Set<String>, companies: Set<String>)] {
        try mirror.writer.read { db in
            var relations: [String: (tags: Set<String>, companies: Set<String>)] = [:]
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT c.id, l.kind, l.target FROM contact_links l JOIN contacts c ON c.row_id = l.contact_row
                    WHERE c.state = 'synced' AND l.kind IN (0, 1)
                    """)
            for row in rows {
                let id: String = row[0]
                var entry = relations[id] ?? ([], [])
                if row[1] as Int == 0 { entry.tags.insert(row[2]) } else { entry.companies.insert(row[2]) }
                relations[id] = entry
            }
            return relations
        }
    }

    /// Contacts whose links differ from the simulator's, as "id: mirror vs server".
    static func linkDifferences(_ harness: SimulatorHarness) async throws -> [String] {
        let expected = await harness.workspace.relationsByContact().filter {
            !$0.value.tags.isEmpty || !$0.value.companies.isEmpty
        }
        let actual = try mirroredRelations(harness.mirror)
        var differences: [String] = []
        for id in Set(expected.keys).union(actual.keys).sorted() {
            let want = expected[id] ?? ([], [])
            let have = actual[id] ?? ([], [])
            if want.tags != have.tags || want.companies != have.companies {
                differences.append("\(id): mirror \(have) vs server \(want)")
            }
        }
        return differences
    }

    @Test func aFullPullLinksEveryTagAndCompanyEvenBeyondWhatBodiesList() async throws {
        let harness = try await Self.seeded()
        defer { Task { await harness.stop() } }
        let overflowing = await harness.workspace.relationsByContact().values.count { $0.tags.count > 10 }
        #expect(overflowing > 0, "the seed should give some contacts more tags than a body lists")
        let summary = try await harness.sync.run()
        #expect(summary.followedLinks == overflowing)
        #expect(summary.tags == 20)
        #expect(summary.companies == 40)
        #expect(summary.segments == 4)
        #expect(try await Self.linkDifferences(harness) == [])
        let followups = try await harness.mirror.writer.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM link_followups")
        }
        #expect(followups == 0)
        let tags = try harness.mirror.tags()
        #expect(Set(tags.map(\.name)) == Set(await harness.workspace.tagList().map(\.name)))
        let expectedVIP = await harness.workspace.relationsByContact().values.count { $0.tags.contains("7000001") }
        #expect(tags.first { $0.name == "VIP" }?.contacts == expectedVIP)
        // Every link carries its contact's updated_at, which pages a tag's contacts in order.
        let drift = try await harness.mirror.writer.read { db in
            try Int.fetchOne(
                db,
                sql: """
                    SELECT count(*) FROM contact_links l JOIN contacts c ON c.row_id = l.contact_row
                    WHERE l.contact_updated_at != c.updated_at
                    """)
        }
        #expect(drift == 0)
    }

    @Test func aPartitionedPullLinksTheSame() async throws {
        let harness = try await Self.seeded(contacts: 2_000)
        defer { Task { await harness.stop() } }
        let sync = ContactSync(
            mirror: harness.mirror, client: harness.client, now: { [clock = harness.workspace.clock] in clock.now },
            concurrency: 8, rangeTarget: 300)
        let summary = try await sync.run()
        #expect(summary.ranges > 1)
        #expect(try await Self.linkDifferences(harness) == [])
    }

    @Test func aPullThatDefersItsIndexesLinksTheSameAtItsEnd() async throws {
        let harness = try await Self.seeded(contacts: 1_500)
        defer { Task { await harness.stop() } }
        let sync = ContactSync(
            mirror: harness.mirror, client: harness.client, now: { [clock = harness.workspace.clock] in clock.now },
            bulkLoadFrom: 100, concurrency: 4, rangeTarget: 400)
        let summary = try await sync.run()
        #expect(summary.deferredIndexing)
        #expect(try await Self.linkDifferences(harness) == [])
        let left = try await harness.mirror.writer.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM contact_links_loading")
        }
        #expect(left == 0)
    }

    @Test func tagsAndCompaniesChangedOnTheServerShowAfterAnIncrementalPull() async throws {
        let harness = try await Self.seeded(contacts: 600, companies: 20)
        defer { Task { await harness.stop() } }
        _ = try await harness.sync.run()
        let relations = await harness.workspace.relationsByContact()
        let ids = await harness.workspace.contactIDs()
        harness.workspace.clock.advance(by: 3_600)
        try await harness.workspace.tag(contact: ids[0], name: "Fresh Tag")
        let tagged = try #require(ids.first { relations[$0]?.tags.isEmpty == false })
        let someTag = try #require(relations[tagged]?.tags.first)
        let tagName = try #require(await harness.workspace.tagList().first { $0.id == someTag }?.name)
        try await harness.workspace.untag(contact: tagged, name: tagName)
        try await harness.workspace.attach(contact: ids[1], companyID: "co-new", name: "Acme Widgets")
        let inCompany = try #require(ids.first { relations[$0]?.companies.isEmpty == false && $0 != ids[1] })
        let companyNumber = try #require(relations[inCompany]?.companies.first)
        let companyID = try #require(
            try harness.mirror.companies().first { $0.id == companyNumber }?.companyID)
        try await harness.workspace.detach(contact: inCompany, companyID: companyID)
        // A deleted tag goes from every contact without changing their updated_at.
        try await harness.workspace.deleteTag(named: "beta")

        let summary = try await harness.sync.run()
        #expect(summary.passes == [.incremental])
        #expect(try await Self.linkDifferences(harness) == [])
        #expect(try harness.mirror.tags().contains { $0.name == "Fresh Tag" && $0.contacts == 1 })
        #expect(try !harness.mirror.tags().contains { $0.name == "beta" })
        let acme = try harness.mirror.companies(search: "acme")
        #expect(acme.map(\.name) == ["Acme Widgets"])
        #expect(acme.first?.contacts == 1)
        #expect(try harness.mirror.links(ofContact: ids[1]).companies.contains("Acme Widgets"))

        // A deleted company: Intercom counts one fewer than the mirror holds, so the companies are
        // listed again and it goes, links and all.
        harness.workspace.clock.advance(by: 60)
        try await harness.workspace.deleteCompany(companyID: "co-new")
        _ = try await harness.sync.run()
        #expect(try harness.mirror.companies(search: "acme").isEmpty)
        #expect(try await Self.linkDifferences(harness) == [])
    }

    @Test func segmentMembersAreKeptWhenAsked() async throws {
        let harness = try await Self.seeded(contacts: 500, companies: 5)
        defer { Task { await harness.stop() } }
        try harness.mirror.setSyncState(.segmentMembers, to: "1")
        _ = try await harness.sync.run()
        let segments = try harness.mirror.segments()
        #expect(segments.count == 4)
        let leads = try #require(segments.first { $0.name == "Leads" })
        let leadCount = try await harness.contactIDs(role: "lead").count
        #expect(leads.contacts == leadCount)
        var query = ContactQuery()
        query.segments = ["leads"]
        query.limit = 10_000
        let page = try harness.mirror.contacts(matching: query)
        #expect(page.contacts.count == leadCount)
        #expect(page.contacts.allSatisfy { $0.contact.role == .lead })
    }

    @Test func anUpgradedMirrorLinksTheContactsItAlreadyHolds() async throws {
        let harness = try await Self.seeded(contacts: 400, companies: 10)
        defer { Task { await harness.stop() } }
        _ = try await harness.sync.run()
        let before = try Self.mirroredRelations(harness.mirror)
        #expect(!before.isEmpty)
        // As a mirror written before links were kept: none, and the upgrade's mark.
        try await harness.mirror.writer.write { db in
            try db.execute(sql: "DELETE FROM contact_links")
            try ContactMirror.setSyncState(.linksUpgrade, to: "0", in: db)
        }
        try harness.mirror.relinkStoredContacts()
        let after = try Self.mirroredRelations(harness.mirror)
        // Bodies list 10 tags at most: the rest wait for the next sync's followups.
        let overflowing = before.filter { $0.value.tags.count > 10 }.map(\.key)
        for (id, links) in before where !overflowing.contains(id) {
            #expect(after[id]?.tags == links.tags && after[id]?.companies == links.companies)
        }
        #expect(try harness.mirror.syncState(.linksUpgrade) == nil)
        _ = try await harness.sync.run()
        #expect(try await Self.linkDifferences(harness) == [])
    }
}
