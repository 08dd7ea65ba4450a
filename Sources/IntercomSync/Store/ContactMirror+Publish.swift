import Foundation
import GRDB

/// A team's puller runs the sync every mirror runs, into a mirror of its own, and publishes
/// what changed there to the team's store: contacts whose body or state the sync wrote since
/// the last publish, with all their links, and the workspace's tags, companies and segments.
extension ContactMirror {
    /// The time from which contacts are published again: the end of the last complete
    /// publish. 0 before any.
    package func publishWatermark() throws -> Int {
        try syncState(.publishedFrom).flatMap { Int($0) } ?? 0
    }

    /// Records a complete publish that began at `time`: the next scans from there.
    package func finishPublishing(from time: Int) throws {
        try writer.write { db in
            try Self.setSyncState(.publishedFrom, to: String(time), in: db)
            try Self.setSyncState(.publishing, to: nil, in: db)
        }
    }

    /// Records that a publish began; answers whether the last one was cut short (its process
    /// ended before it completed), when the changes it had noted are lost with it.
    package func beginPublishing() throws -> Bool {
        try writer.write { db in
            let interrupted = try Self.syncState(.publishing, in: db) != nil
            try Self.setSyncState(.publishing, to: "1", in: db)
            return interrupted
        }
    }

    /// Up to `limit` synced or tombstoned contacts fetched or found gone at `since` or later,
    /// after row `row`, in row order, each with its links (placeholders of tags made offline
    /// left out); and the last row read (nil at the end).
    package func contactsToPublish(since: Int, after row: Int64, limit: Int) throws -> (
        contacts: [UpstreamContact], last: Int64?
    ) {
        try writer.read { db in
            let rows = try Int64.fetchAll(
                db,
                sql: """
                    SELECT row_id FROM contacts
                    WHERE row_id > ? AND (ifnull(fetched_at, 0) >= ? OR ifnull(validated_at, 0) >= ?)
                    ORDER BY row_id LIMIT ?
                    """, arguments: [row, since, since, limit])
            return (try Self.publishable(rows, in: db), rows.last)
        }
    }

    /// Starts noting, on the connection every write of the mirror goes through, each contact a
    /// write changes (its row, or its links), for `takeChangedContacts`. The notes belong to
    /// the connection (a temporary table and triggers, no part of the mirror's schema) and end
    /// with the process: a publish cut short is made good by the next one's scan from the last
    /// complete publish (`contactsToPublish(since:after:limit:)`).
    package func noteChangesForPublishing() async throws {
        try await writer.write { db in try db.execute(sql: Self.publishNotes) }
    }

    /// The temporary table and triggers that note changed contacts. A bulk load's links wait in
    /// `contact_links_loading` until its end; a publish reads them there too.
    private static let publishNotes = """
        CREATE TEMP TABLE IF NOT EXISTS publish_queue (contact_row INTEGER PRIMARY KEY);
        CREATE TEMP TRIGGER IF NOT EXISTS publish_contact_insert AFTER INSERT ON main.contacts
        BEGIN INSERT OR IGNORE INTO publish_queue VALUES (new.row_id); END;
        CREATE TEMP TRIGGER IF NOT EXISTS publish_contact_update AFTER UPDATE ON main.contacts
        BEGIN INSERT OR IGNORE INTO publish_queue VALUES (new.row_id); END;
        \(linkNotes)
        """

    /// The triggers that note link changes, apart: `quietlyMovingLinks` sets them aside.
    private static let linkNotes = """
        CREATE TEMP TRIGGER IF NOT EXISTS publish_link_insert AFTER INSERT ON main.contact_links
        BEGIN INSERT OR IGNORE INTO publish_queue VALUES (new.contact_row); END;
        CREATE TEMP TRIGGER IF NOT EXISTS publish_link_delete AFTER DELETE ON main.contact_links
        BEGIN INSERT OR IGNORE INTO publish_queue VALUES (old.contact_row); END;
        CREATE TEMP TRIGGER IF NOT EXISTS publish_loading_link_insert AFTER INSERT ON main.contact_links_loading
        BEGIN INSERT OR IGNORE INTO publish_queue VALUES (new.contact_row); END;
        CREATE TEMP TRIGGER IF NOT EXISTS publish_loading_link_delete AFTER DELETE ON main.contact_links_loading
        BEGIN INSERT OR IGNORE INTO publish_queue VALUES (old.contact_row); END;
        """

    /// Whether the connection notes changes for a publish.
    private static func notingChanges(in db: Database) throws -> Bool {
        try Bool.fetchOne(
            db, sql: "SELECT count(*) > 0 FROM sqlite_temp_master WHERE type = 'table' AND name = 'publish_queue'")
            ?? false
    }

    /// Runs `change`, which drops the connection's temporary tables and triggers (SQLite drops
    /// them when `temp_store` changes), and starts the notes again with what they held, so a
    /// publish running beside loses none. Outside a transaction, as such a change must be.
    static func keepingPublishNotes(in db: Database, _ change: () throws -> Void) throws {
        guard try notingChanges(in: db) else { return try change() }
        let noted = try Int64.fetchAll(db, sql: "SELECT contact_row FROM temp.publish_queue")
        defer { try? restoreNotes(noted, in: db) }
        try change()
    }

    /// Starts the notes again (if they are gone) with `noted` among them.
    private static func restoreNotes(_ noted: [Int64], in db: Database) throws {
        try db.inTransaction {
            try db.execute(sql: publishNotes)
            try db.execute(
                sql: "INSERT OR IGNORE INTO temp.publish_queue SELECT value FROM json_each(?)",
                arguments: [JSONValue.array(noted.map { .int($0) }).jsonText])
            return .commit
        }
    }

    /// Runs `move`, which moves links between `contact_links_loading` and `contact_links`
    /// without changing what a publish reads of them (the end of a bulk load), with the notes
    /// of link changes set aside: a publish reads both tables, so nothing moved needs
    /// publishing again.
    static func quietlyMovingLinks(in db: Database, _ move: () throws -> Void) throws {
        guard try notingChanges(in: db) else { return try move() }
        for trigger in [
            "publish_link_insert", "publish_link_delete", "publish_loading_link_insert",
            "publish_loading_link_delete",
        ] {
            try db.execute(sql: "DROP TRIGGER IF EXISTS temp.\(trigger)")
        }
        do {
            try move()
        } catch {
            try? db.execute(sql: linkNotes)
            throw error
        }
        try db.execute(sql: linkNotes)
    }

    /// Hands over up to `limit` of the contacts noted changed (`noteChangesForPublishing`), in
    /// row order, as they stand now, and forgets them. `drained` says no note is left. `lost`
    /// says the notes were gone and had to be started again, so the changes noted but not
    /// handed over, and those written since, are lost: SQLite drops a connection's temporary
    /// tables and triggers when its `temp_store` changes. The mirror's own changes of it keep
    /// the notes (`keepingPublishNotes`); any other is caught here.
    package func takeChangedContacts(limit: Int) async throws -> (
        contacts: [UpstreamContact], drained: Bool, lost: Bool
    ) {
        try await writer.write { db in
            guard try Self.notingChanges(in: db) else {
                try db.execute(sql: Self.publishNotes)
                return ([], false, true)
            }
            let rows = try Int64.fetchAll(
                db, sql: "SELECT contact_row FROM temp.publish_queue ORDER BY contact_row LIMIT ?", arguments: [limit])
            guard let last = rows.last else { return ([], true, false) }
            try db.execute(sql: "DELETE FROM temp.publish_queue WHERE contact_row <= ?", arguments: [last])
            return (try Self.publishable(rows, in: db), rows.count < limit, false)
        }
    }

    /// Up to `limit` contacts that have links, after row `row`, with them; and the last row
    /// read (nil at the end).
    package func linkedContacts(after row: Int64, limit: Int) throws -> (contacts: [UpstreamContact], last: Int64?) {
        try writer.read { db in
            let rows = try Int64.fetchAll(
                db,
                sql: "SELECT DISTINCT contact_row FROM contact_links WHERE contact_row > ? ORDER BY contact_row LIMIT ?",
                arguments: [row, limit])
            return (try Self.publishable(rows, in: db), rows.last)
        }
    }

    /// The synced and tombstoned contacts of `rows`, with their links (those a bulk load holds
    /// aside until its end among them).
    private static func publishable(_ rows: [Int64], in db: Database) throws -> [UpstreamContact] {
        guard !rows.isEmpty else { return [] }
        let list = JSONValue.array(rows.map { .int($0) }).jsonText
        var links: [Int64: [UpstreamLink]] = [:]
        let linkRows = try Row.fetchCursor(
            db,
            sql: """
                SELECT contact_row, kind, target FROM contact_links
                WHERE contact_row IN (SELECT value FROM json_each(?1)) AND target NOT LIKE 'local:%'
                UNION
                SELECT contact_row, kind, target FROM contact_links_loading
                WHERE contact_row IN (SELECT value FROM json_each(?1)) AND target NOT LIKE 'local:%'
                """, arguments: [list])
        while let link = try linkRows.next() {
            guard let kind = LinkKind(rawValue: link[1]) else { continue }
            links[link[0], default: []].append(UpstreamLink(kind: kind, target: link[2]))
        }
        var contacts: [UpstreamContact] = []
        contacts.reserveCapacity(rows.count)
        let dictionaries = BodyFunctions.ConnectionDictionaries()
        let contactRows = try Row.fetchCursor(
            db,
            sql: """
                SELECT row_id, id, body, state, email, external_id, role, name, phone, updated_at
                FROM contacts
                WHERE row_id IN (SELECT value FROM json_each(?)) AND state IN ('synced', 'tombstoned')
                ORDER BY row_id
                """, arguments: [list])
        while let row = try contactRows.next() {
            let rowID: Int64 = row[0]
            var contact = UpstreamContact(
                id: row[1], body: try BodyFunctions.text(ofStored: row[2], in: db, cache: dictionaries),
                tombstoned: row[3] == ContactState.tombstoned.rawValue, change: 0,
                links: links[rowID] ?? [])
            contact.columns = UpstreamColumns(
                email: row[4], externalID: row[5], role: row[6], name: row[7], phone: row[8], updatedAt: row[9])
            contacts.append(contact)
        }
        return contacts
    }

    /// The workspace's tags, companies and segments as the mirror holds them.
    package func directory() throws -> UpstreamDirectory {
        try writer.read { db in
            let tags = try Row.fetchAll(db, sql: "SELECT id, name FROM tags WHERE id NOT LIKE 'local:%' ORDER BY id").map {
                UpstreamDirectory.Named(id: $0["id"], name: $0["name"])
            }
            let companies = try String.fetchAll(db, sql: "SELECT body FROM companies ORDER BY id")
            let segments = try Row.fetchAll(
                db, sql: "SELECT id, name, person_type, created_at, updated_at FROM segments ORDER BY id"
            ).map {
                UpstreamDirectory.Named(
                    id: $0["id"], name: $0["name"], personType: $0["person_type"], createdAt: $0["created_at"],
                    updatedAt: $0["updated_at"])
            }
            return UpstreamDirectory(tags: tags, companies: companies, segments: segments)
        }
    }

    /// The change number of the upstream's directory the mirror holds (0 before any).
    package func upstreamDirectoryChange() throws -> Int64 {
        try syncState(.upstreamDirectoryChange).flatMap { Int64($0) } ?? 0
    }

    /// Makes the mirror's tags, companies and segments the upstream's.
    package func applyDirectory(_ directory: UpstreamDirectory, change: Int64) async throws {
        let companies = try directory.companies.compactMap { CompanyRecord(try JSONValue(jsonText: $0)) }
        try await writer.write { db in
            try Self.replaceTags(directory.tags.map { ($0.id, $0.name) }, in: db)
            try Self.storeCompanies(companies, listingEvery: true, in: db)
            try Self.replaceSegments(
                directory.segments.map { ($0.id, $0.name, $0.personType, $0.createdAt, $0.updatedAt) }, in: db)
            try Self.setSyncState(.upstreamDirectoryChange, to: String(change), in: db)
        }
    }

    /// Makes a followed contact's links those the upstream lists, all of them: it needs no read
    /// of its own lists. A contact whose taggings wait in the outbox keeps the links they show.
    static func replaceLinks(of id: String, with links: [UpstreamLink], in db: Database) throws {
        guard
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT row_id, updated_at FROM contacts WHERE id = ?1 AND NOT EXISTS (
                        SELECT 1 FROM outbox WHERE outbox.contact_id = ?1 AND kind IN ('tag_contact', 'untag_contact')
                            AND state IN ('pending', 'in_flight', 'pushed'))
                    """, arguments: [id])
        else { return }
        let contactRow: Int64 = row["row_id"]
        try db.execute(sql: "DELETE FROM contact_links WHERE contact_row = ?", arguments: [contactRow])
        try db.execute(sql: "DELETE FROM contact_links_loading WHERE contact_row = ?", arguments: [contactRow])
        try db.execute(sql: "DELETE FROM link_followups WHERE contact_row = ?", arguments: [contactRow])
        let insert = try db.cachedStatement(
            sql: """
                INSERT OR IGNORE INTO contact_links (kind, target, contact_row, contact_updated_at) VALUES (?, ?, ?, ?)
                """)
        for link in links {
            try insert.execute(arguments: [link.kind.rawValue, link.target, contactRow, row["updated_at"] as Int64])
        }
    }
}
