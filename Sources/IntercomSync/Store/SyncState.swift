import GRDB

/// The keys of the `sync_state` table: where each pull stands, and facts about the workspace.
package enum SyncStateKey: String, Sendable, CaseIterable {
    /// The cursor after the last page a full pull committed.
    case fullPullCursor = "full_pull.cursor"
    /// When the full pull in progress started; absent when none is in progress.
    case fullPullStartedAt = "full_pull.started_at"
    /// Counts full pulls: the one in progress, or the last one.
    case fullPullGeneration = "full_pull.generation"
    case lastFullPullAt = "full_pull.completed_at"
    /// Set when the full pull in progress has walked every page (or range): what is left is to
    /// prove the unseen contacts gone and tombstone them.
    case fullPullWalked = "full_pull.walked"
    /// The newest `updated_at` in the workspace when the full pull in progress began, by the
    /// server's clock: every edit made after the walk began is at or above it.
    case fullPullNewestAtStart = "full_pull.newest_at_start"
    /// Set when the mirror held no synced contact fetched before the full pull in progress
    /// began: none can be left unseen by it, so its walk marks nothing seen and it looks for no
    /// contact to prove gone. (A contact fetched, pushed or stored later is never a candidate.)
    case fullPullNoneOlder = "full_pull.none_older"
    /// The newest `updated_at` a completed incremental or full pull has seen.
    case incrementalWatermark = "incremental.watermark"
    /// The pass in progress: its `updated_at >` bound, the cursor after its last committed page,
    /// and the newest `updated_at` it has seen so far.
    case incrementalFloor = "incremental.floor"
    case incrementalCursor = "incremental.cursor"
    case incrementalPassNewest = "incremental.pass_newest"
    /// The `total_count` search reported with the pass's last committed page.
    case incrementalLastTotal = "incremental.last_total"
    case lastIncrementalPullAt = "incremental.completed_at"
    case lastReconcileAt = "reconcile.completed_at"
    case workspaceTimezone = "workspace.timezone"
    /// The workspace the mirror mirrors (`app.id_code` of `GET /me`) and the API origin it was
    /// reached at: a sync or flush against another is refused unless told to rebind.
    case workspaceID = "workspace.id"
    case workspaceOrigin = "workspace.api_origin"
    case adminID = "workspace.admin_id"
    /// The highest row_id the FTS index held when a load deferred its indexing
    /// (`ContactMirror.bulkLoading`); rows above it wait for the load's end.
    case ftsDeferred = "fts.deferred"
    /// How many times a row above `fts.deferred` changed its indexed text or went while the
    /// flag stood (counted by triggers); cleared with the flag.
    case ftsRewrites = "fts.rewrites"
    /// Set while a bulk load has dropped the secondary contact indexes.
    case indexesDeferred = "indexes.deferred"
    /// How many bodies were compressed without a dictionary, before the first is trained.
    case plainBodies = "bodies.plain"
    /// The row_id up to which an upgrade from text bodies has compressed them; absent when
    /// none is under way.
    case bodiesUpgrade = "bodies.upgrade"
    /// The row_id up to which the contacts of a mirror written before it kept links (tags,
    /// companies) have been linked from their bodies; absent when none is under way.
    case linksUpgrade = "links.upgrade"
    /// Set when the mirror keeps segment memberships (`sync --segments`): every sync then reads
    /// each segment's members.
    case segmentMembers = "segments.members"
    /// The change number of the upstream store (`ContactUpstream`) the mirror has applied up to.
    case upstreamChange = "upstream.change"
    /// The upstream store the mirror follows, as a URL without its password: a `sync` follows
    /// it, and an `outbox flush` pushes to it.
    case upstreamURL = "upstream.url"
    /// The name of the upstream the mirror follows (`ContactUpstream.identity()`), recorded at
    /// its first follow.
    case upstreamIdentity = "upstream.identity"
    /// The mirror's name among those that push to the upstream's outbox, made at its first push.
    case outboxOrigin = "upstream.origin"
    /// The upstream change number up to which the outcomes of the mirror's pushed entries
    /// have been applied.
    case upstreamOutcomeChange = "upstream.outcome_change"
    /// The upstream change number the mirror's tags, companies and segments stand at.
    case upstreamDirectoryChange = "upstream.directory_change"
    /// For a team's puller: the time from which contacts are published again.
    case publishedFrom = "team.published_from"
    /// Set while a puller's publish runs: found set, the last one was cut short.
    case publishing = "team.publishing"
}

extension ContactMirror {
    package static func syncState(_ key: SyncStateKey, in db: Database) throws -> String? {
        try String.fetchOne(
            db.cachedStatement(sql: "SELECT value FROM sync_state WHERE key = ?"), arguments: [key.rawValue])
    }

    /// The values of `keys` that are set, read in one statement.
    static func syncStates(_ keys: [SyncStateKey], in db: Database) throws -> [SyncStateKey: String] {
        let placeholders = Array(repeating: "?", count: keys.count).joined(separator: ", ")
        let rows = try Row.fetchAll(
            db.cachedStatement(sql: "SELECT key, value FROM sync_state WHERE key IN (\(placeholders))"),
            arguments: StatementArguments(keys.map(\.rawValue)))
        var values: [SyncStateKey: String] = [:]
        for row in rows {
            if let key = SyncStateKey(rawValue: row[0]), let value: String = row[1] { values[key] = value }
        }
        return values
    }

    /// Sets (or, with nil, removes) a sync-state value inside the caller's transaction.
    package static func setSyncState(_ key: SyncStateKey, to value: String?, in db: Database) throws {
        if let value {
            try db.cachedStatement(
                sql: "INSERT INTO sync_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            ).execute(arguments: [key.rawValue, value])
        } else {
            try db.cachedStatement(sql: "DELETE FROM sync_state WHERE key = ?").execute(arguments: [key.rawValue])
        }
    }

    package func syncState(_ key: SyncStateKey) throws -> String? {
        try writer.read { db in try Self.syncState(key, in: db) }
    }

    package func setSyncState(_ key: SyncStateKey, to value: String?) throws {
        try writer.write { db in try Self.setSyncState(key, to: value, in: db) }
    }
}
