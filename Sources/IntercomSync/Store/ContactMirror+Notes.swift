import Foundation
import GRDB

/// What `stageNote` queued.
public struct StagedNote: Sendable, Equatable {
    public var seq: Int64
    /// The contact's id now: a local id when it waits for its create.
    public var contactID: String
    /// The create entry the note waits for, when the contact is not pushed yet.
    public var waitsFor: Int64?

    public init(seq: Int64, contactID: String, waitsFor: Int64? = nil) {
        self.seq = seq
        self.contactID = contactID
        self.waitsFor = waitsFor
    }
}

/// Notes written offline: queued in the outbox for `POST /contacts/{id}/notes`, which, like a
/// message, is sent at most once (a note whose answer was lost becomes `unknown`).
extension ContactMirror {
    /// The longest note taken: a note is for people to read, and Intercom's limit is not
    /// documented.
    static let maximumNoteLength = 65_536

    /// Queues a note on a contact (by id, local id or email), written by `adminID` or, without
    /// one, by the token's admin. A contact not pushed yet makes the note wait for its create.
    package func stageNote(_ body: String, to contact: String, adminID: String? = nil, now: Int) throws -> StagedNote {
        var problems: [FieldProblem] = []
        if body.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            problems.append(FieldProblem("body", "a note cannot be empty"))
        } else if body.count > Self.maximumNoteLength {
            problems.append(FieldProblem("body", "is longer than \(Self.maximumNoteLength) characters"))
        } else if body.unicodeScalars.contains(where: {
            ($0.value < 0x20 && !["\n", "\r", "\t"].contains($0)) || (0x7F...0x9F).contains($0.value)
        }) {
            problems.append(FieldProblem("body", "contains a control character (line breaks and tabs are fine)"))
        }
        if let adminID, adminID.isEmpty || !adminID.allSatisfy({ $0.isASCII && $0.isNumber }) {
            problems.append(FieldProblem("admin_id", "\"\(adminID)\" is not an admin id (a number, from `GET /admins`)"))
        }
        if !problems.isEmpty { throw DraftError(problems: problems) }
        return try writer.write { db in
            let target = try Self.recipient(contact.trimmingCharacters(in: .whitespaces), in: db)
            let waitsFor = try Self.createAwaited(by: target, now: now, in: db)
            var payload: [String: JSONValue] = ["body": .string(body)]
            if let adminID { payload["admin_id"] = .string(adminID) }
            let seq = try Self.insertEntry(
                .addNote, contactID: target.id, dependsOn: waitsFor, payload: JSONValue.object(payload).jsonText, now: now,
                in: db)
            return StagedNote(seq: seq, contactID: target.id, waitsFor: waitsFor)
        }
    }

    /// Marks a note in flight and builds its request, in one transaction, for the contact's
    /// current id (remapped if its create was pushed).
    package func prepareNote(seq: Int64, now: Int) async throws -> EntryReadiness {
        try await writer.write { db in
            guard let entry = try Self.entry(seq: seq, in: db), entry.state == .pending else { return .gone }
            if let dependency = entry.dependsOn {
                guard let create = try Self.entry(seq: dependency, in: db), create.state == .sent else { return .blocked }
            }
            let contactID = try Self.resolve(id: entry.contactID ?? "", in: db)
            guard
                let state = try String.fetchOne(db, sql: "SELECT state FROM contacts WHERE id = ?", arguments: [contactID]),
                state != ContactState.pending.rawValue
            else { return .blocked }
            guard try Self.markInFlight(seq: seq, now: now, in: db) else { return .gone }
            return .note(contactID: contactID, body: entry.payload)
        }
    }
}

/// The notes the mirror keeps: those read from Intercom, and those written offline.
extension ContactMirror {
    /// Stores notes as Intercom lists them (`GET /contacts/{id}/notes` items, or the answer to
    /// a `POST`). With `complete`, they are all of the contact's notes, and a stored note
    /// missing from them was deleted on Intercom.
    package func storeNotes(_ notes: [JSONValue], of contactID: String, complete: Bool) async throws {
        let rows = notes.compactMap(Self.noteRow)
        try await writer.write { db in
            let id = try Self.resolve(id: contactID, in: db)
            if complete {
                let kept = rows.compactMap(\.id)
                try db.execute(
                    sql: """
                        DELETE FROM contact_notes WHERE contact_id = ?
                        AND id NOT IN (SELECT value FROM json_each(?))
                        """, arguments: [id, JSONValue.array(kept.map(JSONValue.string)).jsonText])
            }
            // A note whose answer was lost (`unknown`) and that Intercom lists did reach it: the
            // entry is sent, and no one need decide.
            let unknown = try Row.fetchAll(
                db,
                sql: """
                    SELECT seq, payload FROM outbox WHERE kind = 'add_note' AND state = 'unknown'
                        AND (contact_id = ?1 OR contact_id IN (SELECT alias FROM contact_aliases WHERE id = ?1))
                    ORDER BY seq
                    """, arguments: [id])
            var claimed: Set<String> = []
            for entry in unknown {
                let payload = try? JSONValue(jsonText: entry["payload"] as String)
                let body: String? = payload?["body"]?.string
                let admin: String? = payload?["admin_id"]?.string
                func matches(_ row: ContactNote) -> Bool {
                    guard let id = row.id, !claimed.contains(id), row.body == body else { return false }
                    return admin == nil || admin == row.authorID
                }
                guard let note = rows.first(where: matches), let noteID = note.id,
                    try Bool.fetchOne(
                        db, sql: "SELECT EXISTS (SELECT 1 FROM outbox WHERE kind = 'add_note' AND remote_id = ?)",
                        arguments: [noteID]) == false
                else { continue }
                claimed.insert(noteID)
                try db.execute(
                    sql: """
                        UPDATE outbox SET state = 'sent', remote_id = ?, last_error_status = NULL, last_error_code = NULL,
                            last_error_message = NULL, last_error_request_id = NULL
                        WHERE seq = ?
                        """, arguments: [noteID, entry["seq"] as Int64])
            }
            for row in rows {
                try db.execute(
                    sql: """
                        INSERT INTO contact_notes (id, contact_id, body, author_id, author_name, created_at)
                        VALUES (?, ?, ?, ?, ?, ?)
                        ON CONFLICT (id) DO UPDATE SET contact_id = excluded.contact_id, body = excluded.body,
                            author_id = excluded.author_id, author_name = excluded.author_name,
                            created_at = excluded.created_at
                        """, arguments: [row.id, id, row.body, row.authorID, row.authorName, row.createdAt])
            }
        }
    }

    /// A note of Intercom's as stored, or nil when it has no id or no body.
    private static func noteRow(_ note: JSONValue) -> ContactNote? {
        guard let id = note["id"]?.string ?? note["id"]?.int.map(String.init), let body = note["body"]?.string else {
            return nil
        }
        let author = note["author"]
        return ContactNote(
            id: id, body: body, authorID: author?["id"]?.string ?? author?["id"]?.int.map(String.init),
            authorName: author?["name"]?.string, createdAt: note["created_at"]?.int ?? 0)
    }

    /// A contact's notes (by Intercom or local id): those written offline and not sent (or sent
    /// but not read back, when Intercom's answer could not be read), oldest first, then those
    /// read from Intercom, newest first, with the count its stored version
    /// gives. Reads the mirror alone.
    package func notes(ofContact contactID: String) throws -> ContactNotes {
        let total = { (body: String?) in body.flatMap { try? JSONValue(jsonText: $0) }?["notes"]?["total_count"]?.int }
        let written = """
            SELECT 1 FROM contact_notes WHERE contact_id = ?1
            UNION ALL SELECT 1 FROM outbox WHERE kind = 'add_note'
                AND (contact_id = ?1 OR contact_id IN (SELECT alias FROM contact_aliases WHERE id = ?1))
            """
        guard try anyRow(written, contact: contactID) else {
            return ContactNotes(notes: [], totalOnIntercom: total(try contact(id: contactID)?.body))
        }
        return try poolRead { db in
            let id = try Self.resolve(id: contactID, in: db)
            var notes: [ContactNote] = []
            let staged = try Row.fetchAll(
                db,
                sql: """
                    SELECT seq, state, payload, created_at FROM outbox
                    WHERE kind = 'add_note'
                        AND (contact_id = ?1 OR contact_id IN (SELECT alias FROM contact_aliases WHERE id = ?1))
                        AND (state != 'sent' OR remote_id IS NULL OR remote_id NOT IN (SELECT id FROM contact_notes))
                    ORDER BY seq
                    """, arguments: [id])
            for row in staged {
                let payload = try? JSONValue(jsonText: row["payload"] as String)
                notes.append(
                    ContactNote(
                        id: nil, body: payload?["body"]?.string ?? "", authorID: payload?["admin_id"]?.string,
                        createdAt: row["created_at"], outboxSeq: row["seq"],
                        outboxState: OutboxState(rawValue: row["state"])))
            }
            notes += try Row.fetchAll(
                db,
                sql: """
                    SELECT id, body, author_id, author_name, created_at FROM contact_notes
                    WHERE contact_id = ? ORDER BY created_at DESC, id DESC
                    """, arguments: [id]
            ).map {
                ContactNote(
                    id: $0["id"], body: $0["body"], authorID: $0["author_id"], authorName: $0["author_name"],
                    createdAt: $0["created_at"])
            }
            let body = try String.fetchOne(db, sql: "SELECT contact_body(body) FROM contacts WHERE id = ?", arguments: [id])
            return ContactNotes(notes: notes, totalOnIntercom: total(body))
        }
    }

    /// Whether the contact's stored version lists notes the mirror has not read.
    package func lacksNotes(ofContact contactID: String) throws -> Bool {
        try poolRead { db in
            let id = try Self.resolve(id: contactID, in: db)
            guard
                let text = try String.fetchOne(
                    db, sql: "SELECT contact_body(body) FROM contacts WHERE id = ?", arguments: [id]),
                let notes = (try? JSONValue(jsonText: text))?["notes"]
            else { return false }
            let stored = Set(try String.fetchAll(db, sql: "SELECT id FROM contact_notes WHERE contact_id = ?", arguments: [id]))
            var listed: [String] = []
            if case .array(let items)? = notes["data"] {
                listed = items.compactMap { $0["id"]?.string ?? $0["id"]?.int.map(String.init) }
            }
            return (notes["total_count"]?.int ?? listed.count) != stored.count || !listed.allSatisfy(stored.contains)
        }
    }
}
