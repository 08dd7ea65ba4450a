import Foundation
import GRDB
import IntercomSimulator
import Testing

@testable import IntercomSync

@Suite struct GetContactTests {
    /// Requests to one contact's path in the simulator's log.
    private func requests(to id: String, in harness: SimulatorHarness) async -> [LoggedRequest] {
        await harness.workspace.requestLog().filter { $0.path == "/contacts/\(id)" }
    }

    @Test func cachedReadMakesNoRequest() async throws {
        let harness = try await SimulatorHarness.start(contacts: 50)
        defer { Task { await harness.stop() } }
        _ = try await harness.sync.run()
        let id = await harness.workspace.contactIDs()[7]
        let before = await harness.workspace.requestLog().count
        let answer = try await harness.sync.getContact(id)
        #expect(answer.source == .mirror)
        #expect(answer.contact?.id == id)
        #expect(answer.age == 0, "the pull validated it at the simulator's current time")
        #expect(await harness.workspace.requestLog().count == before)
    }

    @Test func refreshWithAnETagGets304ThenA200AfterAChange() async throws {
        let harness = try await SimulatorHarness.start(contacts: 50)
        defer { Task { await harness.stop() } }
        _ = try await harness.sync.run()
        let id = await harness.workspace.contactIDs()[3]
        // A pull stores no ETag; the first refresh fetches one.
        let first = try await harness.sync.getContact(id, freshness: .refresh)
        let etag = try #require(first.contact?.etag)
        harness.workspace.clock.advance(by: 30)
        let second = try await harness.sync.getContact(id, freshness: .refresh)
        #expect(second.source == .revalidated)
        #expect(second.contact?.validatedAt == first.contact!.validatedAt! + 30)
        #expect(second.contact?.fetchedAt == first.contact?.fetchedAt)
        #expect(await requests(to: id, in: harness).map(\.status) == [200, 304])

        harness.workspace.clock.advance(by: 30)
        try await harness.workspace.edit(id: id, fieldsJSON: #"{"name": "Renamed"}"#)
        let third = try await harness.sync.getContact(id, freshness: .refresh)
        #expect(third.source == .fetched)
        #expect(third.contact?.contact.name == "Renamed")
        #expect(third.contact?.etag != etag)
        #expect(third.contact?.body?.contains("Renamed") == true)
    }

    @Test func maximumAgeRevalidatesOnlyOldAnswers() async throws {
        let harness = try await SimulatorHarness.start(contacts: 20)
        defer { Task { await harness.stop() } }
        _ = try await harness.sync.run()
        let id = await harness.workspace.contactIDs()[1]
        #expect(try await harness.sync.getContact(id, freshness: .maximumAge(600)).source == .mirror)
        harness.workspace.clock.advance(by: 601)
        #expect(try await harness.sync.getContact(id, freshness: .maximumAge(600)).source == .revalidated)
    }

    @Test func withoutETagsTheBodyDecides() async throws {
        let harness = try await SimulatorHarness.start(contacts: 20) { $0.etags = false }
        defer { Task { await harness.stop() } }
        _ = try await harness.sync.run()
        let id = await harness.workspace.contactIDs()[2]
        let same = try await harness.sync.getContact(id, freshness: .refresh)
        #expect(same.source == .revalidated)
        #expect(same.contact?.etag == nil)
        harness.workspace.clock.advance(by: 5)
        try await harness.workspace.edit(id: id, fieldsJSON: #"{"name": "Changed"}"#)
        let changed = try await harness.sync.getContact(id, freshness: .refresh)
        #expect(changed.source == .fetched)
        #expect(changed.contact?.contact.name == "Changed")
        #expect(await requests(to: id, in: harness).map(\.status) == [200, 200])
    }

    @Test func notFoundTombstones() async throws {
        let harness = try await SimulatorHarness.start(contacts: 20)
        defer { Task { await harness.stop() } }
        _ = try await harness.sync.run()
        let id = await harness.workspace.contactIDs()[4]
        try await harness.workspace.delete(id: id)
        let answer = try await harness.sync.getContact(id, freshness: .refresh)
        #expect(answer.contact?.state == .tombstoned)
        // A later page fetched before the deletion was noticed cannot bring it back.
        #expect(try harness.mirror.contact(id: id)?.state == .tombstoned)
    }

    @Test func mergedContactFollowsTheLinkToTheSurvivor() async throws {
        let harness = try await SimulatorHarness.start(contacts: 40)
        defer { Task { await harness.stop() } }
        _ = try await harness.sync.run()
        let lead = try await harness.contactIDs(role: "lead")[0]
        let user = try await harness.contactIDs(role: "user")[0]
        try await harness.workspace.merge(from: lead, into: user)
        let answer = try await harness.sync.getContact(lead, freshness: .refresh)
        #expect(answer.mergedFrom == lead)
        #expect(answer.contact?.id == user)
        #expect(try harness.mirror.contact(id: lead)?.state == .tombstoned)
        #expect(await requests(to: lead, in: harness).map(\.status) == [410])
    }

    @Test func contactMissingFromTheMirrorIsFetchedAndStored() async throws {
        let harness = try await SimulatorHarness.start(contacts: 5)
        defer { Task { await harness.stop() } }
        let id = await harness.workspace.contactIDs()[0]
        #expect(try await harness.sync.getContact(id, freshness: .offline).contact == nil)
        let answer = try await harness.sync.getContact(id)
        #expect(answer.source == .fetched)
        #expect(try harness.mirror.contact(id: id)?.etag != nil)
    }

    @Test func offlineAnswersFromTheMirrorWithItsAge() async throws {
        let harness = try await SimulatorHarness.start(contacts: 5)
        _ = try await harness.sync.run()
        let id = await harness.workspace.contactIDs()[0]
        await harness.stop()
        harness.workspace.clock.advance(by: 90)
        let answer = try await harness.sync.getContact(id, freshness: .refresh)
        #expect(answer.source == .offline)
        #expect(answer.age == 90)
        #expect(answer.contact?.id == id)
    }

    @Test func linkHeaderForms() {
        #expect(ContactSync.linkedContactID(#"</contacts/abc123>; rel="canonical""#) == "abc123")
        #expect(ContactSync.linkedContactID(#"<https://api.intercom.io/contacts/x9?y=1>; rel="x""#) == "x9")
        #expect(ContactSync.linkedContactID("nonsense") == nil)
    }
}
