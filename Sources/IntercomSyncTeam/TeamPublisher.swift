import Foundation
import IntercomSync

/// The team's puller: it runs the sync every mirror runs, into a mirror of its own (whose
/// checkpoints, ranges and proofs of deletion make the pull resumable), then publishes what
/// that sync changed into the team's store, where agents follow it by change number.
///
/// A publish is safe to repeat: the store keeps a contact's newest version and moves its
/// change number only when something changed, so a publish cut short (a killed puller, a
/// restarted PostgreSQL) is simply done again from the same point.
package enum TeamPublisher {
    /// What a publish did.
    package struct Published: Sendable, Equatable {
        /// Contacts read from the puller's mirror and sent to the store.
        package var contacts = 0
        /// Of them, those that changed the store.
        package var changed = 0
    }

    /// Publishes the contacts `mirror`'s syncs stored or tombstoned since the last publish,
    /// with their links, and the workspace's tags, companies and segments. The store is first
    /// bound to the mirror's workspace: one that belongs to another is refused unless `rebind`.
    package static func publish(
        _ mirror: IntercomMirror, to team: TeamStore, rebind: Bool = false, pageSize: Int = 1_000,
        now: @Sendable () -> Int = { Int(Date().timeIntervalSince1970) }
    ) async throws -> Published {
        let store = mirror.store
        if let binding = try store.workspaceBinding() {
            try await team.bindWorkspace(binding, rebind: rebind)
        }
        let started = now()
        let since = try store.publishWatermark()
        var published = Published()
        var after: Int64 = 0
        while true {
            let page = try store.contactsToPublish(since: since, after: after, limit: max(1, pageSize))
            guard let last = page.last else { break }
            after = last
            published.contacts += page.contacts.count
            published.changed += try await team.publish(page.contacts, fetchedAt: started)
        }
        try await team.publish(try store.directory())
        // A contact whose whole list of links a sync has still to read is published again
        // once it has them.
        let next = min(started, try store.oldestLinkFollowup() ?? started)
        try store.setPublishWatermark(next)
        return published
    }
}
