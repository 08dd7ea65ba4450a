import Foundation
import GRDB

/// A mirror following an upstream store (`ContactUpstream`): its changes applied a page at a
/// time, each page in one transaction with the change number it reached, so a follow stopped
/// at any point resumes after the last page it applied, and applying a page again changes
/// nothing.
extension ContactMirror {
    /// The upstream change number the mirror has applied up to (0 before any).
    package func upstreamChange() throws -> Int64 {
        try syncState(.upstreamChange).flatMap { Int64($0) } ?? 0
    }

    /// A page of upstream changes with its bodies read, which can be done before the mirror's
    /// writer takes it (while it writes the page before).
    package struct UpstreamPage: Sendable {
        let changes: [UpstreamContact]
        let scanned: ScannedPage

        package init(_ changes: [UpstreamContact]) throws {
            self.changes = changes
            let bodies = changes.lazy.filter { !$0.tombstoned }.compactMap(\.body)
            scanned = try ScannedPage(#"{"type":"list","data":["# + bodies.joined(separator: ",") + "]}")
        }
    }

    /// Applies a page of upstream changes, its bodies read ahead: bodies stored as a pulled
    /// page's are (a pending edit stays on top, a newer stored version is kept), tombstones
    /// applied, and links replaced by the upstream's when it lists them.
    package func applyUpstream(_ page: UpstreamPage, fetchedAt: Int) async throws -> PageUpsert {
        let changes = page.changes
        guard let last = changes.last?.change else { return PageUpsert(received: 0, written: 0) }
        return try await writer.write { db in
            let written = try Self.upsert(page: page.scanned, fetchedAt: fetchedAt, in: db)
            let stored = PageUpsert(received: page.scanned.contacts.count, written: written)
            for change in changes where change.tombstoned {
                try Self.tombstone(id: change.id, at: fetchedAt, in: db)
            }
            try Self.applyUpstreamLinks(of: changes.filter { !$0.tombstoned && $0.links != nil }, in: db)
            try Self.setSyncState(.upstreamChange, to: String(last), in: db)
            return stored
        }
    }

    /// Makes the links of `changes` the upstream's where they differ from those the bodies
    /// gave, and clears the contacts' pending reads of their lists: the upstream's lists are
    /// whole.
    private static func applyUpstreamLinks(of changes: [UpstreamContact], in db: Database) throws {
        guard !changes.isEmpty else { return }
        let ids = JSONValue.array(changes.map { .string($0.id) }).jsonText
        var held: [String: Set<UpstreamLink>] = [:]
        // A bulk load (a first catch-up) holds the links the bodies gave aside until its end.
        let rows = try Row.fetchCursor(
            db,
            sql: """
                SELECT c.id, l.kind, l.target FROM contacts c JOIN contact_links l ON l.contact_row = c.row_id
                WHERE c.id IN (SELECT value FROM json_each(?1))
                UNION ALL
                SELECT c.id, l.kind, l.target FROM contacts c JOIN contact_links_loading l ON l.contact_row = c.row_id
                WHERE c.id IN (SELECT value FROM json_each(?1))
                """, arguments: [ids])
        while let row = try rows.next() {
            guard let kind = LinkKind(rawValue: row[1]) else { continue }
            held[row[0], default: []].insert(UpstreamLink(kind: kind, target: row[2]))
        }
        for change in changes {
            let links = Set(change.links ?? [])
            if links != held[change.id, default: []] { try replaceLinks(of: change.id, with: Array(links), in: db) }
        }
        // Most mirrors hold no pending read of a list: then there is nothing to look up.
        guard try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM link_followups)") == true else { return }
        try db.execute(
            sql: """
                DELETE FROM link_followups WHERE contact_row IN (
                    SELECT row_id FROM contacts WHERE id IN (SELECT value FROM json_each(?)))
                """, arguments: [ids])
    }
}
