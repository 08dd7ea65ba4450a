import Foundation
import IntercomSync

/// The team's puller: it runs the sync every mirror runs, into a mirror of its own (whose
/// checkpoints, ranges and proofs of deletion make the pull resumable), and publishes what the
/// sync changes into the team's store while it runs, where agents follow it by change number.
///
/// Every contact a write of the puller's mirror changes (its row or its links) is noted, on
/// the connection those writes go through, and published page by page as the sync goes on,
/// then the rest and the workspace's tags, companies and segments when it ends. Changes made
/// outside a publish (another process's writes to the puller's mirror) are found by a scan
/// from the start of the last complete publish; after a publish that was cut short (a killed
/// puller), whose notes died with it, every contact is published again. Publishing a contact
/// twice changes nothing: the store keeps its newest version and moves its change number only
/// when something changed.
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

    /// Before the sync: starts noting changes, and publishes what changed since the last
    /// complete publish (everything, after one cut short). Answers when it began, for `finish`.
    package static func begin(
        _ mirror: IntercomMirror, to team: TeamStore, rebind: Bool, pageSize: Int = 1_000,
        now: @Sendable () -> Int = { Int(Date().timeIntervalSince1970) }
    ) async throws -> (began: Int, published: Published) {
        let store = mirror.store
        let began = now()
        try await store.noteChangesForPublishing()
        let interrupted = try store.beginPublishing()
        guard try await bind(mirror, to: team, rebind: rebind) else { return (began, Published()) }
        let since = interrupted ? 0 : try store.publishWatermark()
        var published = Published()
        var after: Int64 = 0
        while true {
            let page = try store.contactsToPublish(since: since, after: after, limit: max(1, pageSize))
            guard let last = page.last else { break }
            after = last
            published = published + (try await send(page.contacts, to: team, now: now()))
        }
        return (began, published)
    }

    /// While the sync runs: publishes the contacts noted changed so far. Publishes nothing
    /// while the mirror is bound to no workspace yet (its first sync has not asked `GET /me`).
    package static func publishNoted(
        _ mirror: IntercomMirror, to team: TeamStore, rebind: Bool, pageSize: Int = 1_000,
        now: @Sendable () -> Int = { Int(Date().timeIntervalSince1970) }
    ) async throws -> Published {
        guard try await bind(mirror, to: team, rebind: rebind) else { return Published() }
        var published = Published()
        while true {
            let page = try await mirror.store.takeChangedContacts(limit: max(1, pageSize))
            guard !page.isEmpty else { return published }
            published = published + (try await send(page, to: team, now: now()))
        }
    }

    /// After the sync: publishes the rest of the changes and the workspace's tags, companies
    /// and segments, and records the publish complete from `began`.
    package static func finish(
        _ mirror: IntercomMirror, to team: TeamStore, began: Int, rebind: Bool, pageSize: Int = 1_000,
        now: @Sendable () -> Int = { Int(Date().timeIntervalSince1970) }
    ) async throws -> Published {
        let published = try await publishNoted(mirror, to: team, rebind: rebind, pageSize: pageSize, now: now)
        guard try await bind(mirror, to: team, rebind: rebind) else { return published }
        try await team.publish(try mirror.store.directory())
        try mirror.store.finishPublishing(from: began)
        return published
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
