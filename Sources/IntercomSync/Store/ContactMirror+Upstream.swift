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
            for change in changes where !change.tombstoned {
                if let links = change.links { try Self.replaceLinks(of: change.id, with: links, in: db) }
            }
            try Self.setSyncState(.upstreamChange, to: String(last), in: db)
            return stored
        }
    }
}
