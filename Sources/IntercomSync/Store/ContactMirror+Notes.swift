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
    func prepareNote(seq: Int64, now: Int) async throws -> EntryReadiness {
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
