import GRDB

/// The mirror's side of a pull and of a refresh: each runs inside the caller's transaction, so
/// a page, its cursor and its bookkeeping commit together.
extension ContactMirror {
    /// Notes that a full pull saw these contacts (`full_pull_seen`), so that at its end those it
    /// did not see can be tombstoned.
    ///
    /// A contact the page wrote (its `fetched_at` is the page's) needs no mark: a pull counts
    /// unseen only contacts fetched before it began. So a first pull, which writes every
    /// contact, marks none, which spared a million inserts into a table freed at its end (33 MB
    /// of free pages left in the file).
    static func markSeen(_ page: ScannedPage, fetchedAt: Int, in db: Database) throws {
        let statement = try db.cachedStatement(
            sql: """
                INSERT OR IGNORE INTO full_pull_seen (id) SELECT ?1
                WHERE NOT EXISTS (SELECT 1 FROM contacts WHERE id = ?1 AND ifnull(fetched_at, 0) >= ?2)
                """)
        for id in page.contacts.compactMap(\.id) { try statement.execute(arguments: [id, fetchedAt]) }
    }

    static func markSeen(ids: [String], in db: Database) throws {
        let statement = try db.cachedStatement(sql: "INSERT OR IGNORE INTO full_pull_seen (id) VALUES (?)")
        for id in ids { try statement.execute(arguments: [id]) }
    }

    /// The synced contacts a full pull begun at `pullStartedAt` has not seen (the ones
    /// `tombstoneUnseen` would tombstone), in id order after `after`, at most `limit`.
    static func unseenIDs(pullStartedAt: Int, after: String, limit: Int, in db: Database) throws -> [String] {
        try String.fetchAll(
            db,
            sql: """
                SELECT id FROM contacts
                WHERE id > :after AND state = 'synced' AND ifnull(fetched_at, 0) < :startedAt
                    AND id NOT IN (SELECT id FROM full_pull_seen)
                ORDER BY id LIMIT :limit
                """, arguments: ["after": after, "startedAt": pullStartedAt, "limit": limit])
    }

    /// Tombstones synced contacts a complete full pull did not see. Contacts fetched after the
    /// pull started (by a refresh, say) and pending local writes are spared. Returns how many.
    /// (The caller clears the seen set when the pull ends.)
    static func tombstoneUnseen(pullStartedAt: Int, now: Int, in db: Database) throws -> Int {
        try db.execute(
            sql: """
                UPDATE contacts SET state = 'tombstoned', validated_at = :now
                WHERE state = 'synced' AND ifnull(fetched_at, 0) < :startedAt
                    AND id NOT IN (SELECT id FROM full_pull_seen) AND \(notBeingUnarchived)
                """, arguments: ["now": now, "startedAt": pullStartedAt])
        return db.changesCount
    }

    /// How many contacts `tombstoneUnseen` would tombstone now.
    static func unseenCount(pullStartedAt: Int, in db: Database) throws -> Int {
        try Int.fetchOne(
            db,
            sql: """
                SELECT count(*) FROM contacts
                WHERE state = 'synced' AND ifnull(fetched_at, 0) < :startedAt AND id NOT IN (SELECT id FROM full_pull_seen)
                """, arguments: ["startedAt": pullStartedAt]) ?? 0
    }

    static func clearSeen(in db: Database) throws {
        try db.execute(sql: "DELETE FROM full_pull_seen")
    }

    /// Marks a contact gone (404, merged away, or absent from a full pull). `validated_at`
    /// records when, so that only an answer fetched later can bring it back. A contact whose
    /// unarchive waits in the outbox is spared: Intercom hides it until the unarchive is sent.
    package static func tombstone(id: String, at time: Int, in db: Database) throws {
        try db.execute(
            sql:
                "UPDATE contacts SET state = 'tombstoned', validated_at = ? WHERE id = ? AND state = 'synced' AND \(notBeingUnarchived)",
            arguments: [time, id])
    }

    /// A condition on `contacts`: no unarchive of the contact waits in the outbox.
    static let notBeingUnarchived = """
        NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.contact_id = contacts.id AND outbox.kind = 'unarchive_contact'
            AND outbox.state IN ('pending', 'in_flight'))
        """

    /// The server confirmed the stored version (a 304, or the same version again).
    static func markValidated(id: String, at time: Int, in db: Database) throws {
        try db.execute(sql: "UPDATE contacts SET validated_at = ? WHERE id = ? AND state = 'synced'", arguments: [time, id])
    }

    /// Stores a body from `GET /contacts/{id}` with its ETag (nil when none came), body and
    /// ETag together. Returns the contact's id as the body gives it.
    @discardableResult
    static func storeFetched(_ contactJSON: String, etag: String?, fetchedAt: Int, in db: Database) throws -> String {
        let contact = try ScannedContact.read(contactJSON)
        guard let id = contact.id else {
            throw MirrorError(.malformedResponse, detail: "the contact has no \"id\"")
        }
        _ = try upsert([contact], fetchedAt: fetchedAt, in: db)
        try db.execute(
            sql: "UPDATE contacts SET etag = ?, validated_at = ? WHERE id = ? AND state = 'synced'",
            arguments: [etag, fetchedAt, id])
        return id
    }

    /// The newest `updated_at` among contacts that came from Intercom.
    static func newestUpdate(in db: Database) throws -> Int? {
        try Int.fetchOne(db, sql: "SELECT max(updated_at) FROM contacts WHERE state != 'pending'")
    }
}
