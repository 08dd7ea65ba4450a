import Foundation
import GRDB

/// A team's puller runs the sync every mirror runs, into a mirror of its own, and publishes
/// what changed there to the team's store: contacts whose body or state the sync wrote since
/// the last publish, with all their links, and the workspace's tags, companies and segments.
extension ContactMirror {
    /// The time from which contacts are published again: that of the last publish, kept back to
    /// the oldest contact whose links a sync has still to read (the publish of such a contact
    /// comes again once it has them). 0 before any publish.
    package func publishWatermark() throws -> Int {
        try syncState(.publishedFrom).flatMap { Int($0) } ?? 0
    }

    package func setPublishWatermark(_ time: Int) throws {
        try setSyncState(.publishedFrom, to: String(time))
    }

    /// When the oldest contact still waiting for a read of its whole list of links was
    /// fetched, if any waits.
    package func oldestLinkFollowup() throws -> Int? {
        try writer.read { db in
            try Int.fetchOne(
                db,
                sql: """
                    SELECT min(c.fetched_at) FROM link_followups f JOIN contacts c ON c.row_id = f.contact_row
                    """)
        }
    }

    /// Up to `limit` synced or tombstoned contacts fetched or found gone at `since` or later,
    /// after row `row`, in row order, each with its links (placeholders of tags made offline
    /// left out); and the last row read (nil at the end).
    package func contactsToPublish(since: Int, after row: Int64, limit: Int) throws -> (
        contacts: [UpstreamContact], last: Int64?
    ) {
        try writer.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT row_id, id, contact_body(body) AS body, state FROM contacts
                    WHERE row_id > ? AND state IN ('synced', 'tombstoned')
                        AND (ifnull(fetched_at, 0) >= ? OR ifnull(validated_at, 0) >= ?)
                    ORDER BY row_id LIMIT ?
                    """, arguments: [row, since, since, limit])
            guard let last = rows.last?["row_id"] as Int64? else { return ([], nil) }
            var links: [Int64: [UpstreamLink]] = [:]
            let linkRows = try Row.fetchAll(
                db,
                sql: """
                    SELECT contact_row, kind, target FROM contact_links
                    WHERE contact_row IN (SELECT value FROM json_each(?)) AND target NOT LIKE 'local:%'
                    """, arguments: [JSONValue.array(rows.map { .int($0["row_id"]) }).jsonText])
            for link in linkRows {
                guard let kind = LinkKind(rawValue: link["kind"]) else { continue }
                links[link["contact_row"], default: []].append(UpstreamLink(kind: kind, target: link["target"]))
            }
            let contacts = rows.map { row in
                UpstreamContact(
                    id: row["id"], body: row["body"], tombstoned: row["state"] == ContactState.tombstoned.rawValue, change: 0,
                    links: links[row["row_id"]] ?? [])
            }
            return (contacts, last)
        }
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
