import GRDB

/// A summary of a mirror: what it holds, what waits to be pushed, and when it last synced.
public struct MirrorStatus: Sendable, Equatable, Codable {
    /// Contacts by state.
    public var contacts: ContactCounts
    /// Outbox entries by state. Imported contacts whose create entries the next flush writes
    /// count as pending.
    public var outbox: OutboxCounts
    /// When the last full pull, incremental pull and reconcile completed (Unix seconds).
    public var lastFullPullAt: Int?
    public var lastIncrementalPullAt: Int?
    public var lastReconcileAt: Int?
    /// The mirror file, or nil for an in-memory mirror.
    public var path: String?
    /// A full pull that has begun and not finished: running now, or stopped part-way (the next
    /// sync resumes it). Nil when none is under way.
    public var fullPull: FullPullState?
    /// What works on the mirror now (a sync, an import, a flush), as it describes itself ("intercom-sync
    /// sync (pid 12, started 2026-12-07T05:00:00Z)"); nil when nothing does. Queries never wait
    /// for it: they read what it has committed.
    public var busyWith: String?

    public init(
        contacts: ContactCounts = ContactCounts(), outbox: OutboxCounts = OutboxCounts(), lastFullPullAt: Int? = nil,
        lastIncrementalPullAt: Int? = nil, lastReconcileAt: Int? = nil, path: String? = nil,
        fullPull: FullPullState? = nil, busyWith: String? = nil
    ) {
        self.fullPull = fullPull
        self.busyWith = busyWith
        self.contacts = contacts
        self.outbox = outbox
        self.lastFullPullAt = lastFullPullAt
        self.lastIncrementalPullAt = lastIncrementalPullAt
        self.lastReconcileAt = lastReconcileAt
        self.path = path
    }

    /// The latest completed sync of any kind.
    public var lastSyncAt: Int? {
        [lastFullPullAt, lastIncrementalPullAt, lastReconcileAt].compactMap { $0 }.max()
    }

    enum CodingKeys: String, CodingKey {
        case contacts, outbox, path
        case lastFullPullAt = "last_full_pull_at"
        case lastIncrementalPullAt = "last_incremental_pull_at"
        case lastReconcileAt = "last_reconcile_at"
        case fullPull = "full_pull"
        case busyWith = "busy_with"
    }

    /// Every key, a missing value as null: a script reads `last_reconcile_at` whether or not a
    /// reconcile has run.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(contacts, forKey: .contacts)
        try container.encode(outbox, forKey: .outbox)
        try container.encode(path, forKey: .path)
        try container.encode(lastFullPullAt, forKey: .lastFullPullAt)
        try container.encode(lastIncrementalPullAt, forKey: .lastIncrementalPullAt)
        try container.encode(lastReconcileAt, forKey: .lastReconcileAt)
        try container.encode(fullPull, forKey: .fullPull)
        try container.encode(busyWith, forKey: .busyWith)
    }
}

/// Where a full pull that has begun stands.
public enum FullPullState: String, Sendable, Equatable, Codable {
    /// A sync is walking the workspace now.
    case inProgress = "in_progress"
    /// The walk stopped part-way (killed, interrupted, failed): the next sync resumes it.
    case interrupted
}

/// How many contacts a mirror holds in each state.
public struct ContactCounts: Sendable, Equatable, Codable {
    public var synced: Int
    /// Written locally and not pushed yet.
    public var pending: Int
    /// Gone from Intercom.
    public var tombstoned: Int

    public init(synced: Int = 0, pending: Int = 0, tombstoned: Int = 0) {
        self.synced = synced
        self.pending = pending
        self.tombstoned = tombstoned
    }

    /// Contacts in every state.
    public var total: Int { synced + pending + tombstoned }

    public subscript(state: ContactState) -> Int {
        switch state {
        case .synced: synced
        case .pending: pending
        case .tombstoned: tombstoned
        }
    }
}

/// How many outbox entries stand in each state.
public struct OutboxCounts: Sendable, Equatable, Codable {
    public var pending: Int
    public var inFlight: Int
    public var sent: Int
    /// Refused by Intercom for good: they need a person.
    public var failed: Int
    /// Messages that may or may not have gone out: they need a person.
    public var unknown: Int
    /// Edits that met a change of the same field on Intercom: they need a person.
    public var conflict: Int
    /// Ended without being sent, needing nothing: a delete won over them, or a person
    /// settled their conflict.
    public var superseded: Int
    /// Handed to a team's outbox, waiting for its outcome from the team's store.
    public var pushed: Int
    /// Of `pending`, the imported contacts whose create entries are not written yet: the next
    /// flush writes them, a page at a time, as it pushes them.
    public var importsWaiting: Int

    public init(
        pending: Int = 0, inFlight: Int = 0, sent: Int = 0, failed: Int = 0, unknown: Int = 0, conflict: Int = 0,
        superseded: Int = 0, pushed: Int = 0, importsWaiting: Int = 0
    ) {
        self.pending = pending
        self.inFlight = inFlight
        self.sent = sent
        self.failed = failed
        self.unknown = unknown
        self.conflict = conflict
        self.superseded = superseded
        self.pushed = pushed
        self.importsWaiting = importsWaiting
    }

    /// The entries written in the outbox in `states` (imports waiting for their entries not
    /// counted).
    public func entries(in states: Set<OutboxState>) -> Int {
        states.reduce(0) { $0 + self[$1] } - (states.contains(.pending) ? importsWaiting : 0)
    }

    public subscript(state: OutboxState) -> Int {
        switch state {
        case .pending: pending
        case .inFlight: inFlight
        case .sent: sent
        case .failed: failed
        case .unknown: unknown
        case .conflict: conflict
        case .superseded: superseded
        case .pushed: pushed
        }
    }

    /// Entries that need a person's decision: failed, unknown and in conflict.
    public var needingAttention: Int { failed + unknown + conflict }

    enum CodingKeys: String, CodingKey {
        case pending, sent, failed, unknown, conflict, superseded, pushed
        case inFlight = "in_flight"
        case importsWaiting = "imports_waiting"
    }
}

extension ContactMirror {
    package func status() throws -> MirrorStatus {
        try writer.read { db in
            // The state index holds the contacts that are not synced; the synced are the rest.
            var contacts = ContactCounts()
            var others = 0
            for row in try Row.fetchAll(
                db, sql: "SELECT state, count(*) AS n FROM contacts WHERE state != 'synced' GROUP BY state")
            {
                let count: Int = row["n"]
                switch ContactState(rawValue: row["state"]) {
                case .pending: contacts.pending = count
                case .tombstoned: contacts.tombstoned = count
                case .synced, nil: break
                }
                others += count
            }
            contacts.synced = (try Int.fetchOne(db, sql: "SELECT count(*) FROM contacts") ?? 0) - others
            var outbox = OutboxCounts()
            for row in try Row.fetchAll(db, sql: "SELECT state, count(*) AS n FROM outbox GROUP BY state") {
                let count: Int = row["n"]
                switch OutboxState(rawValue: row["state"]) {
                case .pending: outbox.pending = count
                case .inFlight: outbox.inFlight = count
                case .sent: outbox.sent = count
                case .failed: outbox.failed = count
                case .unknown: outbox.unknown = count
                case .conflict: outbox.conflict = count
                case .superseded: outbox.superseded = count
                case .pushed: outbox.pushed = count
                case nil: break
                }
            }
            // An imported contact's create is pending before its entry is written.
            outbox.importsWaiting = try Self.importedCreatesWaiting(in: db)
            outbox.pending += outbox.importsWaiting
            func time(_ key: SyncStateKey) throws -> Int? {
                try Self.syncState(key, in: db).flatMap { Int($0) }
            }
            return MirrorStatus(
                contacts: contacts, outbox: outbox, lastFullPullAt: try time(.lastFullPullAt),
                lastIncrementalPullAt: try time(.lastIncrementalPullAt), lastReconcileAt: try time(.lastReconcileAt),
                path: path, fullPull: try time(.fullPullStartedAt) != nil ? .interrupted : nil)
        }
    }

    /// `status()`, with what holds the mirror's lock: looked at before and after the counts are
    /// read, so a sync that ends between the two still counts as the one running.
    package func statusWithActivity() throws -> MirrorStatus {
        let before = MirrorLock.holder(of: self)
        var status = try status()
        status.busyWith = before ?? MirrorLock.holder(of: self)
        if status.fullPull != nil, status.busyWith?.hasPrefix(MirrorLock.syncPurpose) == true {
            status.fullPull = .inProgress
        }
        return status
    }
}
