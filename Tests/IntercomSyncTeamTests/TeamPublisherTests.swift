import Foundation
import GRDB
import IntercomSyncTeam
import Synchronization
import SyntheticData
import Testing

@testable import IntercomSync

/// The puller's publish (`TeamPublisher`): every contact its mirror's writes change reaches the
/// store, however the notes of those changes fare.
@Suite(.enabled(if: TeamTestStore.url != nil, TeamTestStore.missing), .serialized)
struct TeamPublisherTests {
    /// A puller's mirror bound to a workspace, a publish begun into `store` on a clock that
    /// moves `step` seconds at each reading from 1,000, and ten contacts written to the mirror
    /// at 1,000 after it began (noted for the publish).
    static func publishing(into store: TeamStore, step: Int, seed: UInt64) async throws -> (
        mirror: IntercomMirror, run: TeamPublisher.Run, now: @Sendable () -> Int, contacts: [SyntheticContact]
    ) {
        let mirror = try IntercomMirror.inMemory()
        _ = try await mirror.store.bind(
            to: WorkspaceIdentity(
                binding: WorkspaceBinding(workspaceID: "ws1", origin: "http://127.0.0.1:1"), adminID: nil, timezone: nil),
            rebind: false)
        let clock = Mutex(1_000)
        let now: @Sendable () -> Int = {
            clock.withLock { time in
                defer { time += step }; return time
            }
        }
        let (run, _) = try await TeamPublisher.begin(mirror, to: store, rebind: false, now: now)
        let contacts = ContactGenerator(seed: seed).contacts(0..<10)
        let page = IntercomPage.list(contacts, page: 1, perPage: 10, totalCount: 10, nextCursor: nil)
        _ = try mirror.store.upsertPage(page, fetchedAt: 1_000)
        return (mirror, run, now, contacts)
    }
    /// Notes dropped while contacts noted before them still wait to be handed over (a publish
    /// that falls behind the sync): the publish scans again from the last time the notes were
    /// handed over whole, not from the last page it took, and every contact reaches the store.
    @Test func notesLostBehindABacklogArePublishedAllTheSame() async throws {
        let store = try await TeamStore.open(try await TeamTestStore.freshDatabase())
        defer { Task { await store.close() } }
        // The contacts were fetched long before the publish takes its pages.
        let (mirror, run, now, contacts) = try await Self.publishing(into: store, step: 1_000, seed: 3)

        let first = try await TeamPublisher.publishNoted(
            mirror, to: store, run: run, rebind: false, pageSize: 3, until: { true }, now: now)
        #expect(first.contacts == 3, "one page, and the publish falls behind")
        // The notes go as SQLite drops them when `temp_store` changes outside the mirror's care.
        try await mirror.store.writer.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA temp_store = FILE") }

        _ = try await TeamPublisher.finish(mirror, to: store, run: run, rebind: false, pageSize: 3, now: now)
        let stored = try await store.contactChanges(since: 0, limit: 100)
        #expect(Set(stored.map(\.id)) == Set(contacts.map(\.id)))
    }
    /// A page the store refuses is gone from the notes, with the page taken behind it: the
    /// finish scans for their contacts again, and every contact reaches the store.
    @Test func pagesLostToAFailedSendArePublishedByTheFinish() async throws {
        let url = try await TeamTestStore.freshDatabase()
        let store = try await TeamStore.open(url)
        defer { Task { await store.close() } }
        let (mirror, run, now, contacts) = try await Self.publishing(into: store, step: 1, seed: 5)
        // The store refuses the contact the second page holds, for a while.
        try await TeamTestStore.admin(url) { connection in
            try await connection.query(
                """
                CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.id = '\(unescaped: contacts[4].id)' THEN RAISE EXCEPTION 'refused'; END IF;
                    RETURN NEW;
                END $$
                """, logger: TeamTestStore.logger)
            try await connection.query(
                "CREATE TRIGGER refuse BEFORE INSERT ON team_contacts FOR EACH ROW EXECUTE FUNCTION refuse()",
                logger: TeamTestStore.logger)
        }
        await #expect(throws: (any Error).self) {
            try await TeamPublisher.publishNoted(mirror, to: store, run: run, rebind: false, pageSize: 3, now: now)
        }
        try await TeamTestStore.admin(url) { connection in
            try await connection.query("DROP TRIGGER refuse ON team_contacts", logger: TeamTestStore.logger)
        }
        _ = try await TeamPublisher.finish(mirror, to: store, run: run, rebind: false, pageSize: 3, now: now)
        let stored = try await store.contactChanges(since: 0, limit: 100)
        #expect(Set(stored.map(\.id)) == Set(contacts.map(\.id)))
    }
}
