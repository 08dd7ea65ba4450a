import Foundation
import GRDB
import IntercomSimulator
import Testing

@testable import IntercomSync

/// `contacts tag` and `untag`: staged in the outbox, shown by the mirror at once, sent by a flush
/// after the creates they depend on, to the contact they were staged for.
@Suite struct OfflineTaggingTests {
    static func harness(
        contacts: Int = 30, configure: @escaping (inout SimulatorConfiguration) -> Void = { _ in }
    ) async throws -> SimulatorHarness {
        let harness = try await SimulatorHarness.start(contacts: contacts, timeout: 1) { configuration in
            configuration.seedTags = 5
            configure(&configuration)
        }
        _ = try await harness.sync.run()
        return harness
    }

    /// The tag names the server's contact carries.
    static func serverTags(_ harness: SimulatorHarness, of id: String) async -> Set<String> {
        let names = Dictionary(uniqueKeysWithValues: await harness.workspace.tagList().map { ($0.id, $0.name) })
        return Set((await harness.workspace.relationsByContact()[id]?.tags ?? []).compactMap { names[$0] })
    }

    static func taggedIDs(_ mirror: ContactMirror, _ name: String) throws -> Set<String> {
        var query = ContactQuery()
        query.tags = [name]
        query.limit = 10_000
        return Set(try mirror.contacts(matching: query).contacts.map(\.id))
    }

    @Test func aTaggingShowsAtOnceAndTheFlushAppliesIt() async throws {
        let harness = try await Self.harness()
        defer { Task { await harness.stop() } }
        let ids = await harness.workspace.contactIDs()
        let staged = try harness.mirror.stageTagging(contact: ids[0], tags: ["Brand New", "VIP"], now: harness.now)
        #expect(staged.seqs.count == 2 && staged.waitsFor == nil)
        #expect(try Self.taggedIDs(harness.mirror, "brand new") == [ids[0]])
        #expect(try Self.taggedIDs(harness.mirror, "VIP").contains(ids[0]))
        #expect(try harness.mirror.tags().contains { $0.name == "Brand New" && $0.id.hasPrefix("local:") })
        #expect(await Self.serverTags(harness, of: ids[0]).isDisjoint(with: ["Brand New", "VIP"]), "nothing sent yet")

        // A pull in between rewrites the contact's links from Intercom, which has not got them
        // yet: the mirror keeps showing what is queued.
        harness.workspace.clock.advance(by: 60)
        try await harness.workspace.edit(id: ids[0], fieldsJSON: #"{"name": "Edited Meanwhile"}"#)
        _ = try await harness.sync.run()
        #expect(try Self.taggedIDs(harness.mirror, "brand new") == [ids[0]])

        let summary = try await harness.flush()
        #expect(summary.taggings == 2)
        #expect(await Self.serverTags(harness, of: ids[0]).isSuperset(of: ["Brand New", "VIP"]))
        let brandNew = try #require(await harness.workspace.tagList().first { $0.name == "Brand New" })
        let tags = try harness.mirror.tags()
        #expect(tags.contains { $0.id == brandNew.id && $0.contacts == 1 })
        #expect(!tags.contains { $0.id.hasPrefix("local:") }, "the placeholder gave way to Intercom's tag")
        #expect(try staged.seqs.allSatisfy { try harness.entry($0).state == .sent })
        #expect(try harness.entry(staged.seqs[0]).remoteID == brandNew.id)
    }

    @Test func aContactMadeOfflineIsTaggedAfterItsCreate() async throws {
        let harness = try await Self.harness()
        defer { Task { await harness.stop() } }
        let created = try harness.mirror.stageContact(ContactDraft(email: "new@example.com"), now: harness.now)
        let staged = try harness.mirror.stageTagging(contact: "new@example.com", tags: ["Offline Lead"], now: harness.now)
        #expect(staged.waitsFor == created.seq)
        #expect(try Self.taggedIDs(harness.mirror, "Offline Lead") == [created.localID])
        _ = try await harness.flush()
        let intercomID = try #require(try harness.entry(created.seq).remoteID)
        #expect(await Self.serverTags(harness, of: intercomID) == ["Offline Lead"])
        #expect(try Self.taggedIDs(harness.mirror, "Offline Lead") == [intercomID])
    }

    @Test func tagThenUntagEndsUntaggedAndUntagShowsAtOnce() async throws {
        let harness = try await Self.harness()
        defer { Task { await harness.stop() } }
        let ids = await harness.workspace.contactIDs()
        _ = try harness.mirror.stageTagging(contact: ids[1], tags: ["Flip"], now: harness.now)
        _ = try harness.mirror.stageTagging(contact: ids[1], tags: ["flip"], untag: true, now: harness.now)
        #expect(try Self.taggedIDs(harness.mirror, "Flip").isEmpty)
        _ = try await harness.flush()
        #expect(await !Self.serverTags(harness, of: ids[1]).contains("Flip"))
        let entries = try harness.mirror.outboxEntries()
        #expect(entries.map(\.kind) == [.tagContact, .untagContact])
        #expect(entries.allSatisfy { $0.state == .sent })
    }

    @Test func badNamesAndUnknownContactsAreRefusedAndWriteNothing() async throws {
        let harness = try await Self.harness(contacts: 3)
        defer { Task { await harness.stop() } }
        let ids = await harness.workspace.contactIDs()
        #expect(throws: DraftError.self) { try harness.mirror.stageTagging(contact: ids[0], tags: ["ok", "  "], now: 1) }
        #expect(throws: OutboxError.self) { try harness.mirror.stageTagging(contact: "nobody@example.com", tags: ["x"], now: 1) }
        #expect(try harness.mirror.outboxEntries().isEmpty)
        #expect(try !harness.mirror.tags().contains { $0.name == "ok" || $0.name == "x" })
    }

    @Test func lostAnswersNeverTagTheWrongContactOrLoseATagging() async throws {
        let harness = try await Self.harness(contacts: 40) { configuration in
            var faults = FaultPlan()
            faults.lostResponseRate = 0.5
            faults.lostResponseDelaySeconds = 2.5
            faults.routes = ["POST /tags"]
            faults.seed = 5
            configuration.faults = faults
        }
        defer { Task { await harness.stop() } }
        let ids = await harness.workspace.contactIDs()
        let tagged = Array(ids.prefix(6))
        for id in tagged { _ = try harness.mirror.stageTagging(contact: id, tags: ["Lossy"], now: harness.now) }
        _ = try harness.mirror.stageTagging(contact: tagged[0], tags: ["Lossy"], untag: true, now: harness.now)
        var flushes = 0
        while try !harness.mirror.outboxEntries(states: [.pending]).isEmpty && flushes < 8 {
            _ = try await harness.flush()
            flushes += 1
        }
        #expect(await harness.workspace.requestLog().contains { $0.lost }, "the fault must have struck")
        #expect(try harness.mirror.outboxEntries().allSatisfy { $0.state == .sent })
        let lossyID = try #require(await harness.workspace.tagList().first { $0.name == "Lossy" }?.id)
        let carriers = Set(await harness.workspace.relationsByContact().filter { $0.value.tags.contains(lossyID) }.keys)
        #expect(carriers == Set(tagged.dropFirst()))
        #expect(try Self.taggedIDs(harness.mirror, "Lossy") == carriers)
    }

    @Test func theOutboxWidenedForTaggingKeepsItsEntriesAndNeverReusesANumber() throws {
        let queue = try DatabaseQueue()
        try MirrorSchema.migrator.migrate(queue, upTo: "v13: tags, companies, segments")
        try queue.write { db in
            for seq in 1...3 {
                try db.execute(
                    sql: """
                        INSERT INTO outbox (kind, contact_id, payload, state, created_at, updated_at)
                        VALUES ('send_message', 'c\(seq)', '{}', ?, 1, 1)
                        """, arguments: [seq == 1 ? "sent" : "pending"])
            }
            try db.execute(sql: "DELETE FROM outbox WHERE seq = 3")
        }
        let mirror = try ContactMirror(writer: queue)
        let entries = try mirror.outboxEntries()
        #expect(entries.map(\.seq) == [1, 2])
        #expect(entries.map(\.state) == [.sent, .pending])
        let next = try queue.write { db in
            try ContactMirror.insertEntry(.tagContact, contactID: "c2", dependsOn: nil, payload: #"{"name":"x"}"#, now: 2, in: db)
        }
        #expect(next == 4, "a number once given is never given again")
    }
}
