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

    /// Applies a page of upstream changes: bodies stored as a pulled page's are (a pending
    /// edit stays on top, a newer stored version is kept), tombstones applied, and links
    /// replaced by the upstream's when it lists them.
    package func applyUpstream(_ changes: [UpstreamContact], fetchedAt: Int) async throws -> PageUpsert {
        guard let last = changes.last?.change else { return PageUpsert(received: 0, written: 0) }
        let bodies = changes.filter { !$0.tombstoned }.compactMap(\.body)
        let page = #"{"type":"list","data":["# + bodies.joined(separator: ",") + "]}"
        return try await writer.write { db in
            let stored = try Self.upsertPage(page, fetchedAt: fetchedAt, in: db)
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
        for row in try Row.fetchAll(
            db,
            sql: """
                SELECT c.id, l.kind, l.target FROM contacts c JOIN contact_links l ON l.contact_row = c.row_id
                WHERE c.id IN (SELECT value FROM json_each(?))
                """, arguments: [ids])
        {
            guard let kind = LinkKind(rawValue: row["kind"]) else { continue }
            held[row["id"], default: []].insert(UpstreamLink(kind: kind, target: row["target"]))
        }
        for change in changes {
            let links = Set(change.links ?? [])
            if links != held[change.id, default: []] { try replaceLinks(of: change.id, with: Array(links), in: db) }
        }
        try db.execute(
            sql: """
                DELETE FROM link_followups WHERE contact_row IN (
                    SELECT row_id FROM contacts WHERE id IN (SELECT value FROM json_each(?)))
                """, arguments: [ids])
    }
}
