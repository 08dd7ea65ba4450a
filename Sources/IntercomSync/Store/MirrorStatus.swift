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

    public init(
        contacts: ContactCounts = ContactCounts(), outbox: OutboxCounts = OutboxCounts(), lastFullPullAt: Int? = nil,
        lastIncrementalPullAt: Int? = nil, lastReconcileAt: Int? = nil, path: String? = nil
    ) {
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
    }
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
    /// Of `pending`, the imported contacts whose create entries are not written yet: the next
    /// flush writes them, a page at a time, as it pushes them.
    public var importsWaiting: Int

    public init(
        pending: Int = 0, inFlight: Int = 0, sent: Int = 0, failed: Int = 0, unknown: Int = 0, importsWaiting: Int = 0
    ) {
        self.pending = pending
        self.inFlight = inFlight
        self.sent = sent
        self.failed = failed
        self.unknown = unknown
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
        }
    }

    /// Entries that need a person's decision: failed and unknown.
    public var needingAttention: Int { failed + unknown }

    enum CodingKeys: String, CodingKey {
        case pending, sent, failed, unknown
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
                path: path)
        }
    }
}
