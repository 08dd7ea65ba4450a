import Foundation
import IntercomSync
import IntercomSyncTeam
import Testing

/// The team's replica of Intercom's contacts: stored by the puller, read by change number.
@Suite(.enabled(if: TeamTestStore.url != nil, TeamTestStore.missing), .serialized)
struct TeamContactsTests {
    static func body(_ id: String, name: String, updatedAt: Int, email: String? = nil) -> String {
        let mail = email.map { #""\#($0)""# } ?? "null"
        return
            #"{"type":"contact","id":"\#(id)","role":"user","email":\#(mail),"name":"\#(name)","created_at":1,"updated_at":\#(updatedAt)}"#
    }

    /// Change numbers commit in the order they were taken: while a writer holds a change it
    /// has not committed, a later writer waits, so a reader that moves past a change number
    /// never misses an earlier one that commits late.
    @Test func changesCommitInTheirOrder() async throws {
        let url = try await TeamTestStore.freshDatabase()
        let store = try await TeamStore.open(url)
        defer { Task { await store.close() } }
        let slow = Self.body("slow", name: "Slow", updatedAt: 100)
        try await TeamTestStore.admin(url) { connection in
            try await connection.query("BEGIN", logger: TeamTestStore.logger)
            try await connection.query(
                "INSERT INTO team_contacts (id, body, updated_at) VALUES ('slow', \(slow), 100)", logger: TeamTestStore.logger)
            let later = Task { try await store.storeContacts([Self.body("quick", name: "Quick", updatedAt: 100)], fetchedAt: 1) }
            try await Task.sleep(for: .milliseconds(300))
            let seen = try await store.contactChanges(since: 0, limit: 10)
            #expect(seen.isEmpty, "a change committed after an earlier one still open would let a reader skip it")
            try await connection.query("COMMIT", logger: TeamTestStore.logger)
            _ = try await later.value
        }
        let changes = try await store.contactChanges(since: 0, limit: 10)
        #expect(changes.map(\.id) == ["slow", "quick"])
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

    /// An agent's mirror follows the store with no connection to Intercom: every contact
    /// arrives, a tombstone hides one, a page applied again changes nothing, an edit made in
    /// the mirror stays on top of a newer version from upstream, and a follow resumes after the
    /// last change it applied.
    @Test func aMirrorFollowsTheStore() async throws {
        let store = try await TeamStore.open(try await TeamTestStore.freshDatabase())
        defer { Task { await store.close() } }
        let bodies = (1...120).map {
            Self.body(String(format: "c%03d", $0), name: "Name \($0)", updatedAt: 100 + $0, email: "c\($0)@example.com")
        }
        try await store.storeContacts(bodies, fetchedAt: 1)
        let mirror = try IntercomMirror.inMemory()
        let first = try await mirror.follow(store, pageSize: 50)
        #expect(first.changes == 120 && first.stored == 120)
        var query = ContactQuery()
        query.limit = 1_000
        #expect(try await mirror.contacts(matching: query).contacts.count == 120)
        #expect(try await mirror.contact(id: "c007")?.contact.email == "c7@example.com")

        try await mirror.stageEdit(ContactPatch([.phone: "+15550107"]), to: "c007")
        try await store.storeContacts([Self.body("c007", name: "Renamed", updatedAt: 500, email: "c7@example.com")], fetchedAt: 2)
        try await store.tombstoneContacts(["c008"], at: 2)
        let second = try await mirror.follow(store)
        #expect(second.changes == 2 && second.change > first.change, "\(second)")
        let edited = try #require(try await mirror.contact(id: "c007")?.contact)
        #expect(edited.name == "Renamed" && edited.phone == "+15550107", "upstream's name, the edit on top")
        #expect(try await mirror.contact(id: "c008")?.state == .tombstoned)
        #expect(try await mirror.contacts(matching: query).contacts.count == 119)
        let third = try await mirror.follow(store)
        #expect(third.changes == 0 && third.change == second.change)
    }

    /// A mirror's change number counts the changes of the store it followed: another store,
    /// even one that answers at the same address (rebuilt, or another database renamed to its
    /// name), is refused and changes nothing, where it would have looked caught up.
    @Test func aMirrorFollowsOnlyTheStoreItFollowed() async throws {
        let first = try await TeamStore.open(try await TeamTestStore.freshDatabase("followedfirst"))
        defer { Task { await first.close() } }
        let second = try await TeamStore.open(try await TeamTestStore.freshDatabase("followedsecond"))
        defer { Task { await second.close() } }
        try await first.storeContacts((1...30).map { Self.body("f\($0)", name: "F", updatedAt: 100, email: nil) }, fetchedAt: 1)
        try await second.storeContacts([Self.body("s1", name: "S", updatedAt: 100, email: nil)], fetchedAt: 1)
        #expect(try await first.identity() != second.identity())
        let mirror = try IntercomMirror.inMemory()
        let followed = try await mirror.follow(first)
        let refused = try await #require(throws: SyncError.self) { try await mirror.follow(second) }
        #expect(refused.kind == .foreignWorkspace && refused.description.contains("another store"), "\(refused)")
        #expect(try await mirror.contact(id: "s1") == nil)
        let again = try await mirror.follow(first)
        #expect(again.changes == 0 && again.change == followed.change)
    }
}
