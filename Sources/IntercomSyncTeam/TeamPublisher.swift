import Foundation
import IntercomSync
import Synchronization

/// The team's puller: it runs the sync every mirror runs, into a mirror of its own (whose
/// checkpoints, ranges and proofs of deletion make the pull resumable), and publishes what the
/// sync changes into the team's store while it runs, where agents follow it by change number.
///
/// Every contact a write of the puller's mirror changes (its row or its links) is noted, on
/// the connection those writes go through, and published page by page as the sync goes on,
/// then the rest and the workspace's tags, companies and segments when it ends. Changes made
/// outside a publish (another process's writes to the puller's mirror) are found by a scan
/// from the start of the last complete publish. The mirror keeps its notes across the changes
/// of `temp_store` its own bulk loads make; notes SQLite dropped all the same are made good by
/// a scan from the last time they were handed over whole (the queue drained), and every linked
/// contact published again.
/// After a publish cut short (a killed puller, a round PostgreSQL refused), whose notes are
/// gone, every contact is published again. Publishing a contact twice changes nothing: the
/// store keeps its newest version and moves its change number only when something changed.
package enum TeamPublisher {
    /// What a publish did.
    package struct Published: Sendable, Equatable {
        /// Contacts sent to the store.
        package var contacts = 0
        /// Of them, those that changed the store.
        package var changed = 0

        package static func + (lhs: Published, rhs: Published) -> Published {
            Published(contacts: lhs.contacts + rhs.contacts, changed: lhs.changed + rhs.changed)
        }
    }

    /// One publish, from `begin` to `finish`.
    package final class Run: Sendable {
        struct State {
            /// When the notes were last handed over whole (the queue drained).
            var intactAt: Int
            /// From when contacts must be scanned again, when notes were lost.
            var lostSince: Int?
            /// A round failed: contacts it had taken were not published.
            var failed = false
        }

        let began: Int
        let state: Mutex<State>

        init(began: Int) {
            self.began = began
            state = Mutex(State(intactAt: began))
        }
    }

    /// Before the sync: starts noting changes, and publishes what changed since the last
    /// complete publish (everything, after one cut short).
    package static func begin(
        _ mirror: IntercomMirror, to team: TeamStore, rebind: Bool, pageSize: Int = 2_000,
        now: @Sendable () -> Int = { Int(Date().timeIntervalSince1970) }
    ) async throws -> (run: Run, published: Published) {
        let store = mirror.store
        let run = Run(began: now())
        try await store.noteChangesForPublishing()
        let interrupted = try store.beginPublishing()
        guard try await bind(mirror, to: team, rebind: rebind) else { return (run, Published()) }
        let since = interrupted ? 0 : try store.publishWatermark()
        return (run, try await scan(mirror, to: team, since: since, pageSize: pageSize, now: now))
    }

    /// While the sync runs: publishes the contacts noted changed so far, page by page until
    /// none is left or `stop` says to stop. Publishes nothing while the mirror is bound to no
    /// workspace yet (its first sync has not asked `GET /me`).
    package static func publishNoted(
        _ mirror: IntercomMirror, to team: TeamStore, run: Run, rebind: Bool, pageSize: Int = 2_000,
        until stop: () -> Bool = { false }, now: @Sendable () -> Int = { Int(Date().timeIntervalSince1970) }
    ) async throws -> Published {
        guard try await bind(mirror, to: team, rebind: rebind) else { return Published() }
        var published = Published()
        // Each page is sent while the next is taken from the notes.
        var sending: Task<Published, any Error>?
        func sent() async throws {
            guard let page = sending else { return }
            sending = nil
            do {
                published = published + (try await page.value)
            } catch {
                // The pages taken since the notes were last whole are gone from them: the
                // finish scans for their contacts again, and the next publish for every one.
                run.state.withLock {
                    $0.failed = true
                    $0.lostSince = min($0.lostSince ?? .max, $0.intactAt - 5)
                }
                throw error
            }
        }
        while true {
            let taken = now()
            let page: (contacts: [UpstreamContact], drained: Bool, lost: Bool)
            do {
                page = try await mirror.store.takeChangedContacts(limit: max(1, pageSize))
            } catch {
                try await sent()
                throw error
            }
            if page.lost {
                // Writes since the last hand-over may not have been noted, and the margin
                // covers a page fetched just before it and written after.
                run.state.withLock { $0.lostSince = min($0.lostSince ?? .max, $0.intactAt - 5) }
                continue
            }
            // Only a drained queue says every change written before `taken` was handed over.
            if page.drained { run.state.withLock { $0.intactAt = taken } }
            try await sent()
            if !page.contacts.isEmpty {
                let (contacts, fetchedAt) = (page.contacts, now())
                sending = Task { try await send(contacts, to: team, now: fetchedAt) }
            }
            if page.drained || stop() {
                try await sent()
                return published
            }
        }
    }

    /// After the sync: publishes the rest of the changes (and what lost notes missed) and the
    /// workspace's tags, companies and segments, and records the publish complete from its
    /// beginning, unless a round failed: the next publish then publishes every contact again.
    package static func finish(
        _ mirror: IntercomMirror, to team: TeamStore, run: Run, rebind: Bool, pageSize: Int = 2_000,
        now: @Sendable () -> Int = { Int(Date().timeIntervalSince1970) }
    ) async throws -> Published {
        var published = try await publishNoted(mirror, to: team, run: run, rebind: rebind, pageSize: pageSize, now: now)
        guard try await bind(mirror, to: team, rebind: rebind) else { return published }
        let (lostSince, failed) = run.state.withLock { ($0.lostSince, $0.failed) }
        if let lostSince {
            published = published + (try await scan(mirror, to: team, since: lostSince, pageSize: pageSize, now: now))
            var after: Int64 = 0
            while true {
                let page = try mirror.store.linkedContacts(after: after, limit: max(1, pageSize))
                guard let last = page.last else { break }
                after = last
                published = published + (try await send(page.contacts, to: team, now: now()))
            }
        }
        try await team.publish(try mirror.store.directory())
        if !failed { try mirror.store.finishPublishing(from: run.began) }
        return published
    }

    /// Publishes the contacts fetched or found gone at `since` or later.
    private static func scan(
        _ mirror: IntercomMirror, to team: TeamStore, since: Int, pageSize: Int, now: @Sendable () -> Int
    ) async throws -> Published {
        var published = Published()
        var after: Int64 = 0
        while true {
            let page = try mirror.store.contactsToPublish(since: since, after: after, limit: max(1, pageSize))
            guard let last = page.last else { return published }
            after = last
            published = published + (try await send(page.contacts, to: team, now: now()))
        }
    }

    /// Binds the store to the mirror's workspace (refused for another unless `rebind`);
    /// false while the mirror has none.
    private static func bind(_ mirror: IntercomMirror, to team: TeamStore, rebind: Bool) async throws -> Bool {
        guard let binding = try mirror.store.workspaceBinding() else { return false }
        try await team.bindWorkspace(binding, rebind: rebind)
        return true
    }

    private static func send(_ contacts: [UpstreamContact], to team: TeamStore, now: Int) async throws -> Published {
        Published(contacts: contacts.count, changed: try await team.publish(contacts, fetchedAt: now))
    }
}
