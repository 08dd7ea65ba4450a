import GRDB

/// The keys of the `sync_state` table: where each pull stands, and facts about the workspace.
public enum SyncStateKey: String, Sendable, CaseIterable {
    case fullPullCursor = "full_pull.cursor"
    case fullPullGeneration = "full_pull.generation"
    case lastFullPullAt = "full_pull.completed_at"
    case incrementalWatermark = "incremental.watermark"
    case lastIncrementalPullAt = "incremental.completed_at"
    case lastReconcileAt = "reconcile.completed_at"
    case workspaceTimezone = "workspace.timezone"
    case adminID = "workspace.admin_id"
}

extension ContactMirror {
    public static func syncState(_ key: SyncStateKey, in db: Database) throws -> String? {
        try String.fetchOne(db, sql: "SELECT value FROM sync_state WHERE key = ?", arguments: [key.rawValue])
    }

    /// Sets (or, with nil, removes) a sync-state value inside the caller's transaction.
    public static func setSyncState(_ key: SyncStateKey, to value: String?, in db: Database) throws {
        if let value {
            try db.execute(
                sql: "INSERT INTO sync_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                arguments: [key.rawValue, value])
        } else {
            try db.execute(sql: "DELETE FROM sync_state WHERE key = ?", arguments: [key.rawValue])
        }
    }

    public func syncState(_ key: SyncStateKey) throws -> String? {
        try writer.read { db in try Self.syncState(key, in: db) }
    }

    public func setSyncState(_ key: SyncStateKey, to value: String?) throws {
        try writer.write { db in try Self.setSyncState(key, to: value, in: db) }
    }
}
