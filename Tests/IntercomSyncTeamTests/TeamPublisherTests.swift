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
    /// Notes dropped while contacts noted before them still wait to be handed over (a publish
    /// that falls behind the sync): the publish scans again from the last time the notes were
    /// handed over whole, not from the last page it took, and every contact reaches the store.
    @Test func notesLostBehindABacklogArePublishedAllTheSame() async throws {
        let store = try await TeamStore.open(try await TeamTestStore.freshDatabase())
        defer { Task { await store.close() } }
        let mirror = try IntercomMirror.inMemory()
        _ = try await mirror.store.bind(
            to: WorkspaceIdentity(
                binding: WorkspaceBinding(workspaceID: "ws1", origin: "http://127.0.0.1:1"), adminID: nil, timezone: nil),
            rebind: false)
        // A clock that moves on at each reading: the contacts were fetched long before the
        // publish takes its pages.
        let clock = Mutex(1_000)
        let now: @Sendable () -> Int = {
            clock.withLock { time in
                defer { time += 1_000 }; return time
            }
        }
        let (run, _) = try await TeamPublisher.begin(mirror, to: store, rebind: false, now: now)
        let contacts = ContactGenerator(seed: 3).contacts(0..<10)
        let page = IntercomPage.list(contacts, page: 1, perPage: 10, totalCount: 10, nextCursor: nil)
        _ = try mirror.store.upsertPage(page, fetchedAt: 1_000)

        let first = try await TeamPublisher.publishNoted(
            mirror, to: store, run: run, rebind: false, pageSize: 3, until: { true }, now: now)
        #expect(first.contacts == 3, "one page, and the publish falls behind")
        // The notes go as SQLite drops them when `temp_store` changes outside the mirror's care.
        try await mirror.store.writer.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA temp_store = FILE") }

        _ = try await TeamPublisher.finish(mirror, to: store, run: run, rebind: false, pageSize: 3, now: now)
        let stored = try await store.contactChanges(since: 0, limit: 100)
        #expect(Set(stored.map(\.id)) == Set(contacts.map(\.id)))
    }
}
