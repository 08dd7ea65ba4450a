import Foundation
import IntercomSync
import IntercomSyncTeam
import Testing

/// The team's replica of Intercom's contacts: stored by the puller, read by change number.
@Suite(.enabled(if: TeamTestStore.url != nil, TeamTestStore.missing), .serialized)
struct TeamContactsTests {
    static func body(_ id: String, name: String, updatedAt: Int, email: String? = nil) -> String {
        let mail = email.map { #""\#($0)""# } ?? "null"
        return #"{"type":"contact","id":"\#(id)","role":"user","email":\#(mail),"name":"\#(name)","updated_at":\#(updatedAt)}"#
    }

    /// A page stored again changes nothing; a newer version moves the contact's change number,
    /// an older one is ignored; a tombstone is a change too. An agent reading from its last
    /// change number sees each change once, in order.
    @Test func changesAreNumberedOnceEach() async throws {
        let store = try await TeamStore.open(try await TeamTestStore.freshDatabase())
        defer { Task { await store.close() } }
        let page = (1...5).map { Self.body("c\($0)", name: "Name \($0)", updatedAt: 100, email: "c\($0)@example.com") }
        #expect(try await store.storeContacts(page, fetchedAt: 1) == 5)
        #expect(try await store.storeContacts(page, fetchedAt: 2) == 0, "the same page again changes nothing")

        let first = try await store.contactChanges(since: 0, limit: 3)
        #expect(first.map(\.id) == ["c1", "c2", "c3"])
        let rest = try await store.contactChanges(since: first.last!.change, limit: 100)
        #expect(rest.map(\.id) == ["c4", "c5"])
        let seen = rest.last!.change

        #expect(try await store.storeContacts([Self.body("c2", name: "Older", updatedAt: 50)], fetchedAt: 3) == 0)
        #expect(try await store.storeContacts([Self.body("c2", name: "Newer", updatedAt: 200)], fetchedAt: 3) == 1)
        #expect(try await store.tombstoneContacts(["c4", "c9"], at: 10) == 2)
        #expect(try await store.tombstoneContacts(["c4"], at: 11) == 0, "a tombstone is one change")
        let changes = try await store.contactChanges(since: seen, limit: 100)
        #expect(changes.map(\.id) == ["c2", "c4", "c9"])
        #expect(changes[0].body?.contains("Newer") == true && !changes[0].tombstoned)
        #expect(changes[1].tombstoned && changes[1].body != nil && changes[2].body == nil)
        #expect(
            try await store.storeContacts([Self.body("c4", name: "Back?", updatedAt: 300)], fetchedAt: 9) == 0,
            "a page fetched before the tombstone does not bring the contact back")
        #expect(try await store.contactChanges(since: changes.last!.change, limit: 100).isEmpty)
        #expect(
            try await store.storeContacts([Self.body("c4", name: "Unarchived", updatedAt: 300)], fetchedAt: 12) == 1,
            "one fetched after it does")
        let revived = try await store.contactChanges(since: changes.last!.change, limit: 100)
        #expect(revived.map(\.id) == ["c4"] && !revived[0].tombstoned)

        let error = try await #require(throws: TeamStoreError.self) {
            try await store.storeContacts([#"{"type":"contact","name":"no id"}"#], fetchedAt: 5)
        }
        #expect(error.kind == .badEntry)
    }
}
