import GRDB

/// A summary of a mirror: what it holds, what waits to be pushed, and when it last synced.
public struct MirrorStatus: Sendable, Equatable, Codable {
    /// Contacts by state; every state is present, zero included.
    public var contacts: [String: Int]
    /// Outbox entries by state; every state is present, zero included. Imported contacts
    /// whose create entries the next flush writes count as pending.
    public var outbox: [String: Int]
    public var lastFullPullAt: Int?
    public var lastIncrementalPullAt: Int?
    public var lastReconcileAt: Int?
    /// The mirror file, or nil for an in-memory mirror.
    public var path: String?

    enum CodingKeys: String, CodingKey {
        case contacts, outbox, path
        case lastFullPullAt = "last_full_pull_at"
        case lastIncrementalPullAt = "last_incremental_pull_at"
        case lastReconcileAt = "last_reconcile_at"
    }
}

extension ContactMirror {
    public func status() throws -> MirrorStatus {
        try writer.read { db in
            var contacts = Dictionary(uniqueKeysWithValues: ContactState.allCases.map { ($0.rawValue, 0) })
            // The state index holds the contacts that are not synced; the synced are the rest.
            var others = 0
            for row in try Row.fetchAll(
                db, sql: "SELECT state, count(*) AS n FROM contacts WHERE state != 'synced' GROUP BY state")
            {
                contacts[row["state"]] = row["n"]
                others += row["n"] as Int
            }
            let all = try Int.fetchOne(db, sql: "SELECT count(*) FROM contacts") ?? 0
            contacts[ContactState.synced.rawValue] = all - others
            var outbox = Dictionary(uniqueKeysWithValues: OutboxState.allCases.map { ($0.rawValue, 0) })
            for row in try Row.fetchAll(db, sql: "SELECT state, count(*) AS n FROM outbox GROUP BY state") {
                outbox[row["state"]] = row["n"]
            }
            // An imported contact's create is pending before its entry is written.
            outbox[OutboxState.pending.rawValue, default: 0] += try Self.importedCreatesWaiting(in: db)
            func time(_ key: SyncStateKey) throws -> Int? {
                try Self.syncState(key, in: db).flatMap { Int($0) }
            }
            return MirrorStatus(
                contacts: contacts, outbox: outbox, lastFullPullAt: try time(.lastFullPullAt),
                lastIncrementalPullAt: try time(.lastIncrementalPullAt), lastReconcileAt: try time(.lastReconcileAt),
                path: path)
        }
    }
}
