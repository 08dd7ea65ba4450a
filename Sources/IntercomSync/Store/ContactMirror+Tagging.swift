import Foundation
import GRDB

/// What `stageTagging` queued.
public struct StagedTagging: Sendable, Equatable {
    /// One entry a tag, in the order given.
    public var seqs: [Int64]
    /// The contact's id now: a local id when it waits for its create.
    public var contactID: String
    /// The create entry the taggings wait for, when the contact is not pushed yet.
    public var waitsFor: Int64?

    public init(seqs: [Int64], contactID: String, waitsFor: Int64? = nil) {
        self.seqs = seqs
        self.contactID = contactID
        self.waitsFor = waitsFor
    }
}

/// Offline tagging: a tag put on (or taken off) a contact is queued in the outbox and shows in
/// the mirror at once, so `contacts query --tag` finds the contact before any flush.
///
/// A tag the mirror does not know yet is stored as a placeholder (`local:` and the name's key)
/// until Intercom answers with the real tag, which takes over its links. While an entry is
/// queued, a pull that rewrites the contact's links from Intercom's body (which lacks the change)
/// applies it again (`LinkWriter`), so the mirror keeps showing what will be sent.
extension ContactMirror {
    /// The id prefix of a tag made offline, which Intercom has not named yet.
    static let localTagPrefix = "local:"

    /// Queues tagging (or, with `untag`, untagging) a contact (by id, local id or email) with
    /// each of `tags`, by name. A contact not pushed yet makes the entries wait for its create.
    package func stageTagging(contact: String, tags: [String], untag: Bool = false, now: Int) throws -> StagedTagging {
        let names = try Self.validTagNames(tags)
        return try writer.write { db in
            let target = try Self.recipient(contact.trimmingCharacters(in: .whitespaces), in: db)
            let waitsFor = try Self.createAwaited(by: target, now: now, in: db)
            var seqs: [Int64] = []
            for name in names {
                let payload = JSONValue.object(["name": .string(name)]).jsonText
                seqs.append(
                    try Self.insertEntry(
                        untag ? .untagContact : .tagContact, contactID: target.id, dependsOn: waitsFor, payload: payload,
                        now: now, in: db))
                try Self.applyTagging(name: name, untag: untag, toContact: target.id, in: db)
            }
            return StagedTagging(seqs: seqs, contactID: target.id, waitsFor: waitsFor)
        }
    }

    /// The names trimmed; an empty one, one longer than Intercom takes, or one with a control
    /// character (a line break, an escape: as a contact's name) is refused.
    static func validTagNames(_ tags: [String]) throws -> [String] {
        guard !tags.isEmpty else { throw DraftError(problems: [FieldProblem("tag", "give at least one tag name")]) }
        var problems: [FieldProblem] = []
        let names = tags.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        for (given, name) in zip(tags, names) {
            if name.isEmpty {
                problems.append(FieldProblem("tag", "a tag name cannot be empty (\"\(given)\")"))
            } else if let reason = ContactDraft.textProblem(name, limit: 255) {
                problems.append(FieldProblem("tag", "\(JSONValue.string(String(name.prefix(20))).jsonText) \(reason)"))
            }
        }
        guard problems.isEmpty else { throw DraftError(problems: problems) }
        return names
    }

    /// Shows a tagging in the mirror: links the contact to the tag of that name (a placeholder
    /// when the mirror has none), or unlinks it from every tag of that name.
    static func applyTagging(name: String, untag: Bool, toContact id: String, in db: Database) throws {
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT row_id, updated_at FROM contacts WHERE id = ? AND state != 'tombstoned'",
                arguments: [resolve(id: id, in: db)])
        else { return }
        try applyTagging(name: name, untag: untag, rowID: row[0], updatedAt: row[1], in: db)
    }

    static func applyTagging(name: String, untag: Bool, rowID: Int64, updatedAt: Int64, in db: Database) throws {
        let key = LinkName.key(name)
        if untag {
            try db.execute(
                sql: """
                    DELETE FROM contact_links
                    WHERE kind = 0 AND contact_row = ? AND target IN (SELECT id FROM tags WHERE name_key = ?)
                    """, arguments: [rowID, key])
            return
        }
        var tagID = try String.fetchOne(
            db, sql: "SELECT id FROM tags WHERE name_key = ? ORDER BY id LIKE 'local:%', id LIMIT 1", arguments: [key])
        if tagID == nil {
            let local = localTagPrefix + key
            try db.execute(
                sql: "INSERT OR IGNORE INTO tags (id, name, name_key) VALUES (?, ?, ?)", arguments: [local, name, key])
            tagID = local
        }
        try db.execute(
            sql: """
                INSERT OR IGNORE INTO contact_links (kind, target, contact_updated_at, contact_row)
                VALUES (0, ?, ?, ?)
                """, arguments: [tagID, updatedAt, rowID])
    }

    /// Applies the taggings still queued for the contact of `rowID` (after a pull rewrote its
    /// links from Intercom's body, which does not have them yet), in queue order.
    static func reapplyQueuedTaggings(rowID: Int64, updatedAt: Int64, in db: Database) throws {
        let rows = try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT kind, payload FROM outbox
                    WHERE contact_id = (SELECT id FROM contacts WHERE row_id = ?)
                        AND kind IN ('tag_contact', 'untag_contact') AND state IN ('pending', 'in_flight')
                    ORDER BY seq
                    """), arguments: [rowID])
        for row in rows {
            guard let name = (try? JSONValue(jsonText: row[1]))?["name"]?.string else { continue }
            try applyTagging(
                name: name, untag: row[0] == OutboxEntry.Kind.untagContact.rawValue, rowID: rowID,
                updatedAt: updatedAt, in: db)
        }
    }

    /// Whether any tagging waits in the outbox: a batch of pulled contacts looks for theirs
    /// only then.
    static func hasQueuedTaggings(in db: Database) throws -> Bool {
        try Bool.fetchOne(
            db,
            sql: """
                SELECT EXISTS (SELECT 1 FROM outbox WHERE state IN ('pending', 'in_flight')
                    AND kind IN ('tag_contact', 'untag_contact'))
                """) ?? false
    }

    /// Intercom applied a tagging and answered with the tag: the tag is stored (taking over the
    /// links of its placeholder), and the contact linked or unlinked.
    static func recordTagging(tagID: String, name: String, contactID: String, untag: Bool, in db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO tags (id, name, name_key) VALUES (?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, name_key = excluded.name_key
                """, arguments: [tagID, name, LinkName.key(name)])
        try adoptLocalTags(in: db)
        try applyTagging(name: name, untag: untag, toContact: contactID, in: db)
    }

    /// Moves the links of each placeholder tag to the real tag of its name, once the mirror has
    /// one, and removes placeholders that nothing links to any more.
    static func adoptLocalTags(in db: Database) throws {
        let adopted = try Row.fetchAll(
            db,
            sql: """
                SELECT l.id, (SELECT t.id FROM tags t WHERE t.name_key = l.name_key AND t.id NOT LIKE 'local:%'
                    ORDER BY t.id LIMIT 1)
                FROM tags l WHERE l.id LIKE 'local:%'
                """)
        for row in adopted {
            let local: String = row[0]
            if let real: String = row[1] {
                try db.execute(
                    sql: """
                        INSERT OR IGNORE INTO contact_links (kind, target, contact_updated_at, contact_row)
                        SELECT 0, ?, contact_updated_at, contact_row FROM contact_links WHERE kind = 0 AND target = ?
                        """, arguments: [real, local])
                try db.execute(sql: "DELETE FROM contact_links WHERE kind = 0 AND target = ?", arguments: [local])
            }
            try db.execute(
                sql: """
                    DELETE FROM tags WHERE id = ?1 AND NOT EXISTS (
                        SELECT 1 FROM contact_links WHERE kind = 0 AND target = ?1)
                    """, arguments: [local])
        }
    }
}
