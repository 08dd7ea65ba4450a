import Foundation
import GRDB

/// What `stageDelete` queued.
public struct StagedDelete: Sendable, Equatable {
    public var seq: Int64
    public var contactID: String
    /// The update entries of the contact's edits, dropped: a delete wins over them.
    public var droppedEdits: [Int64]

    public init(seq: Int64, contactID: String, droppedEdits: [Int64] = []) {
        self.seq = seq
        self.contactID = contactID
        self.droppedEdits = droppedEdits
    }
}

/// What `stageArchive` did.
public struct StagedArchive: Sendable, Equatable {
    public var contactID: String
    /// The entry queued; nil when an unarchive took back an archive not sent yet.
    public var seq: Int64?
    /// The archive entry an unarchive took back.
    public var withdrew: Int64?

    public init(contactID: String, seq: Int64? = nil, withdrew: Int64? = nil) {
        self.contactID = contactID
        self.seq = seq
        self.withdrew = withdrew
    }
}

/// Deletes made offline: the contact leaves the mirror's answers at once (a tombstone, as a
/// contact deleted on Intercom is), its pending edits are dropped with why, and
/// `DELETE /contacts/{id}` waits in the outbox. Until it is sent, no pull brings the contact
/// back, and dropping the entry does.
extension ContactMirror {
    /// Queues deleting a contact (by id or email) that Intercom has.
    package func stageDelete(contact: String, now: Int) throws -> StagedDelete {
        try writer.write { db in
            let target = try Self.recipient(contact.trimmingCharacters(in: .whitespaces), in: db)
            guard target.state == .synced else {
                let create = try Int64.fetchOne(
                    db, sql: "SELECT seq FROM outbox WHERE kind = 'create_contact' AND contact_id = ? ORDER BY seq",
                    arguments: [target.id])
                throw OutboxError(
                    .wrongState,
                    "contact \(target.id) is not on Intercom yet: drop its create instead"
                        + (create.map { " (`outbox drop \($0) --cascade`)" } ?? ""))
            }
            let seq = try Self.insertEntry(.deleteContact, contactID: target.id, dependsOn: nil, payload: "{}", now: now, in: db)
            let dropped = try Int64.fetchAll(
                db,
                sql: """
                    SELECT seq FROM outbox WHERE contact_id = ? AND kind = 'update_contact'
                        AND state IN ('pending', 'failed', 'conflict') ORDER BY seq
                    """, arguments: [target.id])
            for entry in dropped {
                try Self.settle(
                    seq: entry, state: .superseded,
                    error: OutboxEntry.Failure(
                        status: nil, code: "superseded_by_delete",
                        message: "dropped: the contact is to be deleted (entry #\(seq)), which wins over its edits",
                        requestID: nil), now: now, in: db)
            }
            // The edits stay until the delete is sent: dropping the delete brings them back.
            try Self.tombstone(id: target.id, at: now, in: db)
            return StagedDelete(seq: seq, contactID: target.id, droppedEdits: dropped)
        }
    }

    /// The contacts of `ids` whose delete or archive waits in the outbox: a pull leaves them as
    /// they are.
    static func contactsBeingDeleted(among contacts: [ScannedContact], in db: Database) throws -> Set<String> {
        guard
            try Bool.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT EXISTS (SELECT 1 FROM outbox WHERE kind IN ('delete_contact', 'archive_contact')
                            AND state IN ('pending', 'in_flight'))
                        """)) == true
        else { return [] }
        let ids = contacts.compactMap { $0.id }
        return Set(
            try String.fetchAll(
                db,
                sql: """
                    SELECT contact_id FROM outbox WHERE kind IN ('delete_contact', 'archive_contact')
                        AND state IN ('pending', 'in_flight') AND contact_id IN (\(databaseQuestionMarks(count: ids.count)))
                    """, arguments: StatementArguments(ids)))
    }

    /// Queues archiving a contact Intercom has (it leaves the mirror's answers at once, as an
    /// archived contact leaves Intercom's lists), or unarchiving one (it shows again at once).
    /// Unarchiving a contact whose archive was not sent yet takes the archive back instead.
    package func stageArchive(contact: String, archive: Bool, now: Int) throws -> StagedArchive {
        try writer.write { db in
            let given = contact.trimmingCharacters(in: .whitespaces)
            if archive {
                let target = try Self.recipient(given, in: db)
                guard target.state == .synced else {
                    throw OutboxError(.wrongState, "contact \(target.id) is not on Intercom yet: there is nothing to archive")
                }
                // Archiving again a contact whose unarchive was not sent yet takes it back.
                if let waiting = try Int64.fetchOne(
                    db,
                    sql: """
                        SELECT seq FROM outbox WHERE contact_id = ? AND kind = 'unarchive_contact' AND state = 'pending'
                        ORDER BY seq DESC
                        """, arguments: [target.id])
                {
                    try db.execute(sql: "DELETE FROM outbox WHERE seq = ?", arguments: [waiting])
                    try Self.tombstone(id: target.id, at: now, in: db)
                    return StagedArchive(contactID: target.id, withdrew: waiting)
                }
                let seq = try Self.insertEntry(
                    .archiveContact, contactID: target.id, dependsOn: nil, payload: "{}", now: now, in: db)
                try Self.tombstone(id: target.id, at: now, in: db)
                return StagedArchive(contactID: target.id, seq: seq)
            }
            let id = try Self.resolve(id: given, in: db)
            guard let state = try String.fetchOne(db, sql: "SELECT state FROM contacts WHERE id = ?", arguments: [id]) else {
                throw OutboxError(.unknownRecipient, "no contact \(given) in the mirror", remedy: .sync)
            }
            if let waiting = try Int64.fetchOne(
                db,
                sql: """
                    SELECT seq FROM outbox WHERE contact_id = ? AND kind = 'archive_contact' AND state = 'pending'
                    ORDER BY seq DESC
                    """, arguments: [id])
            {
                try db.execute(sql: "DELETE FROM outbox WHERE seq = ?", arguments: [waiting])
                try Self.undoDelete(of: id, now: now, in: db)
                return StagedArchive(contactID: id, withdrew: waiting)
            }
            guard state == ContactState.tombstoned.rawValue else {
                throw OutboxError(.wrongState, "contact \(id) is not archived in the mirror")
            }
            let seq = try Self.insertEntry(.unarchiveContact, contactID: id, dependsOn: nil, payload: "{}", now: now, in: db)
            try Self.undoDelete(of: id, now: now, in: db)
            return StagedArchive(contactID: id, seq: seq)
        }
    }

    /// A dropped delete or archive: the contact shows again, until the next pull says how
    /// Intercom has it, and the edits the delete had superseded come back as they were: an
    /// entry in conflict to its conflict, and the contact's other edits in one pending entry
    /// (the newest of those the delete superseded; the others stay superseded, since one entry
    /// stands for all of a contact's edits).
    static func undoDelete(of contactID: String, now: Int, in db: Database) throws {
        try db.execute(
            sql: "UPDATE contacts SET state = 'synced' WHERE id = ? AND state = 'tombstoned'", arguments: [contactID])
        let superseded = try Row.fetchAll(
            db,
            sql: """
                SELECT seq, payload FROM outbox
                WHERE contact_id = ? AND kind = 'update_contact' AND state = 'superseded'
                    AND last_error_code = 'superseded_by_delete'
                ORDER BY seq DESC
                """, arguments: [contactID])
        var queued = false
        for row in superseded {
            let seq: Int64 = row["seq"]
            let inConflict = (try? JSONValue(jsonText: row["payload"] as String))?["conflicts"] != nil
            guard inConflict || !queued else { continue }
            queued = queued || !inConflict
            try db.execute(
                sql: """
                    UPDATE outbox SET state = ?, next_attempt_at = NULL, last_error_status = NULL,
                        last_error_code = NULL, last_error_message = NULL, last_error_request_id = NULL, updated_at = ?
                    WHERE seq = ?
                    """, arguments: [inConflict ? "conflict" : "pending", now, seq])
        }
    }

    /// A delete Intercom carried out: the contact's edits, which it won over, are gone with it.
    package func completeDelete(seq: Int64, contactID: String, now: Int) async throws {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM contact_edits WHERE contact_id = ?", arguments: [contactID])
            try Self.settle(seq: seq, state: .sent, remoteID: contactID, now: now, in: db)
        }
    }

    /// Marks a delete, archive or unarchive in flight, naming its contact.
    package func prepareDelete(seq: Int64, now: Int) async throws -> String? {
        try await writer.write { db in
            guard let entry = try Self.entry(seq: seq, in: db), entry.state == .pending, let id = entry.contactID,
                try Self.markInFlight(seq: seq, now: now, in: db)
            else { return nil }
            return id
        }
    }
}
