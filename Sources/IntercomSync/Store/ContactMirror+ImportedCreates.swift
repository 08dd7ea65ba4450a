import GRDB
import IntercomJSON

/// Imported contacts wait for their create entries in `imported_creates` (migration v6).
///
/// An import writes pending contacts only, and records the row_id range of each batch with how
/// many contacts it staged. The create entries are written later, a few thousand a transaction,
/// by the flush that pushes them (`queueImportedCreates`), or one at a time when a message is
/// staged for an imported contact (`queueImportedCreate`). An imported contact is therefore
/// always either waiting in a range or has exactly one create entry: the entry is written only
/// for a pending contact of the range that has none, in the same transaction that moves the
/// range past it.
extension ContactMirror {
    /// Records the contacts a batch of an import staged: `count` of them, row_ids
    /// `firstRowID...lastRowID` (rows another process wrote between them have their own entries).
    static func noteImportedCreates(firstRowID: Int64, lastRowID: Int64, count: Int, now: Int, in db: Database)
        throws
    {
        // A range left behind whose rows were deleted may start at a reused row_id: merged, it
        // still names only pending contacts without entries, which is all the queueing trusts.
        try db.execute(
            sql: """
                INSERT INTO imported_creates (first_row_id, last_row_id, waiting, created_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (first_row_id) DO UPDATE SET last_row_id = max(last_row_id, excluded.last_row_id),
                    waiting = waiting + excluded.waiting, created_at = excluded.created_at
                """, arguments: [firstRowID, lastRowID, count, now])
    }

    /// How many imported contacts have no create entry yet; the next flush writes them.
    package func importedCreatesWaiting() throws -> Int {
        try writer.read { db in try Self.importedCreatesWaiting(in: db) }
    }

    static func importedCreatesWaiting(in db: Database) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT ifnull(sum(waiting), 0) FROM imported_creates") ?? 0
    }

    /// Writes the create entries of imported contacts, at most `limit` of them, oldest first.
    /// Returns false when no imported contact waits any more.
    static func queueImportedCreates(limit: Int, now: Int, in db: Database) throws -> Bool {
        guard
            let range = try Row.fetchOne(
                db, sql: "SELECT first_row_id, last_row_id, created_at FROM imported_creates ORDER BY first_row_id LIMIT 1")
        else { return false }
        let first: Int64 = range[0]
        let last: Int64 = range[1]
        let importedAt: Int = range[2]
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT row_id, \(draftColumns) FROM contacts c
                WHERE row_id BETWEEN ? AND ? AND state = 'pending' AND NOT EXISTS (
                    SELECT 1 FROM outbox o WHERE o.contact_id = c.id AND o.kind = 'create_contact')
                ORDER BY row_id LIMIT ?
                """, arguments: [first, last, limit])
        for row in rows {
            try queueCreate(of: row, importedAt: importedAt, now: now, in: db)
        }
        let next = (rows.last?["row_id"] as Int64? ?? last) + 1
        if rows.count < limit || next > last {
            try db.execute(sql: "DELETE FROM imported_creates WHERE first_row_id = ?", arguments: [first])
        } else {
            try db.execute(
                sql: "UPDATE imported_creates SET first_row_id = ?, waiting = max(0, waiting - ?) WHERE first_row_id = ?",
                arguments: [next, rows.count, first])
        }
        return true
    }

    /// Writes the create entry of one imported contact that still waits for it (a message is
    /// being staged for it); nil when `contactID` is no such contact.
    static func queueImportedCreate(contactID: String, now: Int, in db: Database) throws -> Int64? {
        guard
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT c.row_id, \(draftColumns), i.first_row_id, i.created_at FROM contacts c
                    JOIN imported_creates i ON c.row_id BETWEEN i.first_row_id AND i.last_row_id
                    WHERE c.id = ? AND c.state = 'pending' AND NOT EXISTS (
                        SELECT 1 FROM outbox o WHERE o.contact_id = c.id AND o.kind = 'create_contact')
                    """, arguments: [contactID])
        else { return nil }
        let seq = try queueCreate(of: row, importedAt: row["created_at"], now: now, in: db)
        try db.execute(
            sql: "UPDATE imported_creates SET waiting = max(0, waiting - 1) WHERE first_row_id = ?",
            arguments: [row["first_row_id"] as Int64])
        return seq
    }

    /// The columns `draft(from:)` reads, first the contact's id.
    private static let draftColumns = "c.id, c.role, c.email, c.name, c.phone, c.avatar, c.external_id, c.custom_attributes"

    @discardableResult
    private static func queueCreate(of row: Row, importedAt: Int, now: Int, in db: Database) throws -> Int64 {
        try insertEntry(
            .createContact, contactID: row["id"], dependsOn: nil, payload: try draft(from: row).requestBodyText,
            now: now, createdAt: importedAt, in: db)
    }

    /// The draft a pending contact was staged from, as its columns hold it.
    private static func draft(from row: Row) throws -> ContactDraft {
        var attributes: [String: JSONValue] = [:]
        if case .object(let fields) = try JSONValue(jsonText: row["custom_attributes"]) { attributes = fields }
        return ContactDraft(
            role: ContactRole(rawValue: row["role"]) ?? .user, email: row["email"] ?? "", name: row["name"],
            phone: row["phone"], avatar: row["avatar"], externalID: row["external_id"], customAttributes: attributes)
    }
}
