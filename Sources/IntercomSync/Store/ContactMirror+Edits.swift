import Foundation
import GRDB

/// What `stageEdit` staged.
public struct StagedEdit: Sendable, Equatable {
    /// The contact's id now: a local id when it waits for its create.
    public var contactID: String
    /// The outbox entry that will send the contact's edits (one a contact, whatever the number
    /// of edits before a flush); nil when nothing is left to send (every field edited back to
    /// Intercom's value) or when the edit went into the contact's create.
    public var seq: Int64?
    /// The create entry the edit went into, for a contact not pushed yet.
    public var foldedInto: Int64?
    /// The fields of the contact whose edits wait to be sent.
    public var pendingFields: [ContactField]

    public init(contactID: String, seq: Int64? = nil, foldedInto: Int64? = nil, pendingFields: [ContactField] = []) {
        self.contactID = contactID
        self.seq = seq
        self.foldedInto = foldedInto
        self.pendingFields = pendingFields
    }
}

/// Offline edits of a contact's fields.
///
/// An edit lands in the mirror at once (columns, full-text index and body) and waits in
/// `contact_edits`, one row a field, with the field's value when it was first edited (its
/// base) and the newest value Intercom sent (its server value). One `update_contact` entry of
/// the outbox stands for all of a contact's edits, however many were made before a flush. A
/// pull or refresh that brings a new version of the contact stores it, records its values as
/// the server values of the edited fields, and lays the edits over it again: the user's edits
/// stay on top, every other field follows Intercom. A contact still waiting for its create
/// takes the edit into the create instead.
extension ContactMirror {
    /// The columns of `contacts` an edit of each standard field writes (the flag has none).
    static func editColumn(of field: ContactField) -> String? {
        switch field {
        case .name: "name"
        case .email: "email"
        case .phone: "phone"
        case .role: "role"
        case .avatar: "avatar"
        case .externalID: "external_id"
        case .ownerID: "owner_id"
        case .unsubscribedFromEmails, .customAttribute: nil
        }
    }

    /// Stages `patch` on the contact `contact` names (an id, a local id or an email).
    package func stageEdit(_ patch: ContactPatch, to contact: String, now: Int) throws -> StagedEdit {
        try patch.validate()
        return try writer.write { db in
            let target = try Self.recipient(contact.trimmingCharacters(in: .whitespaces), in: db)
            // Intercom refuses an email another contact has (409): said now, not at the flush.
            if let email = patch[.email]?.string, let holder = try Self.contactID(withEmail: email, in: db),
                holder != target.id
            {
                throw OutboxError(
                    .emailExists, "\(email) already belongs to contact \(holder), and Intercom allows it to one contact",
                    existingContactID: holder)
            }
            if target.state == .pending { return try Self.foldIntoCreate(patch, contactID: target.id, now: now, in: db) }
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT row_id, contact_body(body) FROM contacts WHERE id = ?", arguments: [target.id]),
                case .object(var body) = try JSONValue(jsonText: row[1] as String? ?? "{}")
            else {
                throw MirrorError(
                    .corrupt, detail: "contact \(target.id) has no readable body in the mirror", remedy: .repairContacts)
            }
            if patch[.role] == "lead", Self.serverValue(of: .role, in: body) == "user" {
                throw DraftError(
                    problems: [FieldProblem("role", "Intercom turns no user into a lead (a lead can become a user)")])
            }
            var edits = try Self.edits(of: target.id, in: db)
            for field in patch.fields {
                let mine = patch[field] ?? .null
                if let index = edits.firstIndex(where: { $0.field == field }) {
                    edits[index].mine = mine
                } else {
                    let server = Self.serverValue(of: field, in: body)
                    edits.append(FieldEdit(field: field, base: server, mine: mine, server: server))
                }
            }
            // An edit back to Intercom's value leaves nothing to send.
            let pending = edits.filter { $0.mine != ($0.server ?? .null) }
            let restored = edits.filter { $0.mine == ($0.server ?? .null) }
            try db.execute(sql: "DELETE FROM contact_edits WHERE contact_id = ?", arguments: [target.id])
            for edit in pending {
                try db.execute(
                    sql: """
                        INSERT INTO contact_edits (contact_id, field, base, mine, server, edited_at)
                        VALUES (?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        target.id, edit.field.description, edit.base?.jsonText, edit.mine.jsonText, edit.server?.jsonText,
                        now,
                    ])
            }
            for edit in restored { Self.restore(edit.field, to: edit.server, in: &body) }
            for edit in pending { Self.set(edit.field, to: edit.mine, in: &body) }
            try Self.writeFields(of: body, toRow: row[0], in: db)
            // A field in conflict stays there, with this edit as its "mine": it waits for a
            // person's choice, not for the next flush.
            let inConflict = try Self.fieldsInConflict(of: target.id, in: db)
            if !inConflict.isEmpty {
                try Self.renewConflicts(of: target.id, with: pending, restored: restored.map(\.field), now: now, in: db)
            }
            let toSend = pending.filter { !inConflict.contains($0.field) }
            let seq = try Self.queueUpdate(of: target.id, needed: !toSend.isEmpty, now: now, in: db)
            return StagedEdit(contactID: target.id, seq: seq, pendingFields: toSend.map(\.field))
        }
    }

    /// One field's edit as `contact_edits` keeps it.
    package struct FieldEdit: Sendable, Equatable {
        package var field: ContactField
        /// The field's value when it was first edited; nil when the body did not have it.
        package var base: JSONValue?
        package var mine: JSONValue
        /// The newest value Intercom sent; nil when its body did not have the field.
        package var server: JSONValue?

        package init(field: ContactField, base: JSONValue?, mine: JSONValue, server: JSONValue?) {
            self.field = field
            self.base = base
            self.mine = mine
            self.server = server
        }
    }

    /// The edits of a contact that wait to be sent, by field.
    package func pendingEdits(of contactID: String) throws -> [FieldEdit] {
        guard try anyRow("SELECT 1 FROM contact_edits WHERE contact_id = ?1", contact: contactID) else { return [] }
        return try writer.read { db in try Self.edits(of: try Self.resolve(id: contactID, in: db), in: db) }
    }

    /// Which of these contacts (by Intercom or local id) have edits that wait to be sent.
    package func editedContactIDs(among ids: [String]) throws -> Set<String> {
        // Most mirrors have no edit waiting: a table of contacts then opens no pool connection.
        guard !ids.isEmpty, try anyRow(PlannedStatement(sql: "SELECT EXISTS (SELECT 1 FROM contact_edits)", values: []))
        else { return [] }
        return try poolRead { db in
            let edited = Set(
                try String.fetchAll(
                    db,
                    sql: """
                        SELECT DISTINCT e.contact_id FROM contact_edits e
                        WHERE e.contact_id IN (SELECT ifnull((SELECT id FROM contact_aliases WHERE alias = value), value)
                            FROM json_each(?))
                        """, arguments: [JSONValue.array(ids.map(JSONValue.string)).jsonText]))
            return Set(try ids.filter { edited.contains(try Self.resolve(id: $0, in: db)) })
        }
    }

    /// The edits of a contact that wait to be sent.
    static func edits(of contactID: String, in db: Database) throws -> [FieldEdit] {
        try Row.fetchAll(
            db.cachedStatement(sql: "SELECT field, base, mine, server FROM contact_edits WHERE contact_id = ? ORDER BY field"),
            arguments: [contactID]
        ).compactMap { row in
            guard let field = ContactField(name: row[0]), let mine = try? JSONValue(jsonText: row[2] as String) else {
                return nil
            }
            return FieldEdit(
                field: field, base: (row[1] as String?).flatMap { try? JSONValue(jsonText: $0) }, mine: mine,
                server: (row[3] as String?).flatMap { try? JSONValue(jsonText: $0) })
        }
    }

    /// Whether any edit waits: a batch of pulled contacts looks for theirs only then.
    static func hasPendingEdits(in db: Database) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM contact_edits)")) ?? false
    }

    /// After a pull or refresh stored new versions of `contactIDs`: records each edited
    /// field's value in the new version as its server value, and lays the edits over it again.
    static func reapplyEdits(to contactIDs: [String], in db: Database) throws {
        for id in Set(contactIDs) {
            let edits = try edits(of: id, in: db)
            guard !edits.isEmpty,
                let row = try Row.fetchOne(
                    db, sql: "SELECT row_id, contact_body(body) FROM contacts WHERE id = ? AND state = 'synced'",
                    arguments: [id]),
                case .object(var body) = try? JSONValue(jsonText: row[1] as String? ?? "{}")
            else { continue }
            for edit in edits {
                try db.execute(
                    sql: "UPDATE contact_edits SET server = ? WHERE contact_id = ? AND field = ?",
                    arguments: [serverValue(of: edit.field, in: body)?.jsonText, id, edit.field.description])
                set(edit.field, to: edit.mine, in: &body)
            }
            try writeFields(of: body, toRow: row[0], in: db)
        }
    }

    /// Forgets a contact's edits (its update entry was dropped): each edited field shows
    /// Intercom's newest value again.
    static func discardEdits(of contactID: String, in db: Database) throws {
        let edits = try edits(of: contactID, in: db)
        guard !edits.isEmpty,
            let row = try Row.fetchOne(
                db, sql: "SELECT row_id, contact_body(body) FROM contacts WHERE id = ?", arguments: [contactID]),
            case .object(var body) = try? JSONValue(jsonText: row[1] as String? ?? "{}")
        else { return }
        for edit in edits { restore(edit.field, to: edit.server, in: &body) }
        try writeFields(of: body, toRow: row[0], in: db)
        try db.execute(sql: "DELETE FROM contact_edits WHERE contact_id = ?", arguments: [contactID])
    }

    /// Makes sure one pending `update_contact` entry stands for the contact's edits when
    /// `needed`, or that none waits when not. Returns the entry.
    static func queueUpdate(of contactID: String, needed: Bool, now: Int, in db: Database) throws -> Int64? {
        let waiting = try Int64.fetchOne(
            db,
            sql: "SELECT seq FROM outbox WHERE contact_id = ? AND kind = 'update_contact' AND state = 'pending' ORDER BY seq",
            arguments: [contactID])
        if !needed {
            if let waiting { try db.execute(sql: "DELETE FROM outbox WHERE seq = ?", arguments: [waiting]) }
            return nil
        }
        if let waiting {
            try db.execute(sql: "UPDATE outbox SET updated_at = ? WHERE seq = ?", arguments: [now, waiting])
            return waiting
        }
        return try insertEntry(.updateContact, contactID: contactID, dependsOn: nil, payload: "{}", now: now, in: db)
    }

    /// An edit of a contact not pushed yet changes its create: the create's request and the
    /// contact's row, in one.
    private static func foldIntoCreate(_ patch: ContactPatch, contactID: String, now: Int, in db: Database) throws
        -> StagedEdit
    {
        guard
            let create = try Row.fetchOne(
                db,
                sql: "SELECT seq, payload, state FROM outbox WHERE contact_id = ? AND kind = 'create_contact' ORDER BY seq",
                arguments: [contactID]),
            create["state"] == OutboxState.pending.rawValue,
            case .object(var request) = try JSONValue(jsonText: create["payload"] as String)
        else {
            throw OutboxError(
                .wrongState,
                "contact \(contactID) is being created on Intercom right now: edit it once the flush has ended")
        }
        for field in patch.fields { set(field, to: patch[field] ?? .null, in: &request) }
        let seq: Int64 = create["seq"]
        try db.execute(
            sql: "UPDATE outbox SET payload = ?, updated_at = ? WHERE seq = ?",
            arguments: [JSONValue.object(request).jsonText, now, seq])
        guard let rowID = try Int64.fetchOne(db, sql: "SELECT row_id FROM contacts WHERE id = ?", arguments: [contactID])
        else { return StagedEdit(contactID: contactID, foldedInto: seq) }
        // A local contact keeps no body: its row's columns are what it shows.
        try writeColumns(of: request, toRow: rowID, in: db)
        return StagedEdit(contactID: contactID, foldedInto: seq)
    }

    /// A field's value in a contact's JSON as Intercom sends it, normalised as an edit holds
    /// it: nil when the body lacks it, an avatar object as its URL, an owner id as text.
    static func serverValue(of field: ContactField, in body: [String: JSONValue]) -> JSONValue? {
        switch field {
        case .customAttribute(let key):
            guard case .object(let attributes)? = body["custom_attributes"] else { return nil }
            return attributes[key]
        case .avatar:
            guard let avatar = body["avatar"] else { return nil }
            if case .object(let object) = avatar { return object["image_url"] ?? .null }
            return avatar
        case .ownerID:
            guard let owner = body["owner_id"] else { return nil }
            return owner.int.map { .string(String($0)) } ?? owner
        default:
            return body[field.bodyKey]
        }
    }

    /// Sets a field in a contact's JSON (a body, or a create's request), in the shape the
    /// body already has (an avatar object keeps being one).
    static func set(_ field: ContactField, to value: JSONValue, in body: inout [String: JSONValue]) {
        switch field {
        case .customAttribute(let key):
            var attributes: [String: JSONValue] = [:]
            if case .object(let existing)? = body["custom_attributes"] { attributes = existing }
            attributes[key] = value
            body["custom_attributes"] = .object(attributes)
        case .avatar:
            if case .object(var object)? = body["avatar"] {
                object["image_url"] = value
                body["avatar"] = .object(object)
            } else {
                body["avatar"] = value
            }
        default:
            body[field.bodyKey] = value
        }
    }

    /// Puts Intercom's value of a field back: a custom attribute Intercom does not have is
    /// removed rather than set to null.
    static func restore(_ field: ContactField, to server: JSONValue?, in body: inout [String: JSONValue]) {
        if case .customAttribute(let key) = field, server == nil {
            if case .object(var attributes)? = body["custom_attributes"] {
                attributes[key] = nil
                body["custom_attributes"] = .object(attributes)
            }
            return
        }
        set(field, to: server ?? .null, in: &body)
    }

    /// Writes a contact's body and the columns derived from it.
    private static func writeFields(of body: [String: JSONValue], toRow rowID: Int64, in db: Database) throws {
        try writeColumns(of: body, toRow: rowID, in: db)
        try db.execute(
            sql: "UPDATE contacts SET body = ? WHERE row_id = ?", arguments: [JSONValue.object(body).jsonText, rowID])
    }

    /// Writes the columns an edit can change from a contact's JSON.
    private static func writeColumns(of json: [String: JSONValue], toRow rowID: Int64, in db: Database) throws {
        var assignments: [String] = []
        var arguments: [(any DatabaseValueConvertible)?] = []
        for field in ContactField.standard {
            guard let column = editColumn(of: field) else { continue }
            guard let value = serverValue(of: field, in: json) else { continue }
            assignments.append("\(column) = ?")
            arguments.append(value.string)
        }
        if case .object(let attributes)? = json["custom_attributes"] {
            assignments.append("custom_attributes = ?")
            arguments.append(JSONValue.object(attributes).jsonText)
        }
        guard !assignments.isEmpty else { return }
        arguments.append(rowID)
        try db.execute(
            sql: "UPDATE contacts SET \(assignments.joined(separator: ", ")) WHERE row_id = ?",
            arguments: StatementArguments(arguments))
    }
}

/// What an `update_contact` entry sends, read as it is marked in flight.
package enum UpdateReadiness: Sendable, Equatable {
    /// Marked in flight: the contact and its edits as they stand now.
    case edits(contactID: String, [ContactMirror.FieldEdit])
    /// Every edit was taken back: the entry is settled as sent, with nothing to send.
    case nothing
    /// No longer pending.
    case gone
}

/// How a flush settled one edited field, against the contact as Intercom had it just before.
package enum EditOutcome: Sendable, Equatable {
    /// Intercom still had the base: the edit was sent.
    case sent(JSONValue)
    /// Intercom already had the edited value: nothing to send.
    case alreadySo(JSONValue)
    /// Intercom had a third value (nil: the field was absent): a conflict for a person.
    case conflict(theirs: JSONValue?)
}

/// The flush's writes for edits, each one transaction.
extension ContactMirror {
    /// Marks an update entry in flight and reads the edits it sends, in one transaction.
    package func prepareUpdate(seq: Int64, now: Int) async throws -> UpdateReadiness {
        try await writer.write { db in
            guard let entry = try Self.entry(seq: seq, in: db), entry.state == .pending, let id = entry.contactID else {
                return .gone
            }
            // A field in conflict waits for a person's choice, not for this entry.
            let waiting = try Self.fieldsInConflict(of: id, in: db)
            let edits = try Self.edits(of: id, in: db).filter { !waiting.contains($0.field) }
            if edits.isEmpty {
                try Self.settle(
                    seq: seq, state: .superseded,
                    error: OutboxEntry.Failure(
                        status: nil, code: "nothing_to_send",
                        message: waiting.isEmpty
                            ? "nothing left to send: the contact's edits were sent, settled or dropped meanwhile"
                            : "its fields wait in conflict for `outbox resolve`",
                        requestID: nil), now: now, in: db)
                return .nothing
            }
            guard try Self.markInFlight(seq: seq, now: now, in: db) else { return .gone }
            return .edits(contactID: id, edits)
        }
    }

    /// Settles an update entry once Intercom answered: each field sent, or found already so,
    /// stops being an edit (unless the user edited it again meanwhile: that newer edit waits,
    /// against the value sent); each conflicting field stays an edit, with Intercom's value as
    /// its server value, and the entry records it. Stores `contactJSON` (the contact as
    /// Intercom has it now) with the edits left laid over it. Returns the fields in conflict.
    package func completeUpdate(
        seq: Int64, contactID: String, edits: [FieldEdit], outcomes: [ContactField: EditOutcome], contactJSON: String,
        now: Int
    ) async throws -> [ContactField] {
        try await writer.write { db in
            try Self.completeUpdate(
                seq: seq, contactID: contactID, edits: edits, outcomes: outcomes, contactJSON: contactJSON, now: now, in: db)
        }
    }

    /// `completeUpdate` in a transaction of the caller's; without `contactJSON`, the stored
    /// body is left as it is.
    static func completeUpdate(
        seq: Int64, contactID: String, edits: [FieldEdit], outcomes: [ContactField: EditOutcome], contactJSON: String?,
        now: Int, in db: Database
    ) throws -> [ContactField] {
        let current = try Self.edits(of: contactID, in: db)
        var conflicts: [JSONValue] = []
        for edit in edits {
            let latest = current.first { $0.field == edit.field }
            switch outcomes[edit.field] {
            case .sent(let value), .alreadySo(let value):
                if latest?.mine == edit.mine {
                    try db.execute(
                        sql: "DELETE FROM contact_edits WHERE contact_id = ? AND field = ?",
                        arguments: [contactID, edit.field.description])
                } else if latest != nil {
                    try db.execute(
                        sql: "UPDATE contact_edits SET base = ?, server = ? WHERE contact_id = ? AND field = ?",
                        arguments: [value.jsonText, value.jsonText, contactID, edit.field.description])
                }
            case .conflict(let theirs):
                try db.execute(
                    sql: "UPDATE contact_edits SET server = ? WHERE contact_id = ? AND field = ?",
                    arguments: [theirs?.jsonText, contactID, edit.field.description])
                conflicts.append(
                    .object([
                        "field": .string(edit.field.description), "base": edit.base ?? .null, "mine": edit.mine,
                        "theirs": theirs ?? .null,
                    ]))
            case nil:
                break
            }
        }
        if conflicts.isEmpty {
            try Self.settle(seq: seq, state: .sent, remoteID: contactID, now: now, in: db)
        } else {
            try db.execute(
                sql: "UPDATE outbox SET state = 'conflict', payload = ?, updated_at = ? WHERE seq = ?",
                arguments: [JSONValue.object(["conflicts": .array(conflicts)]).jsonText, now, seq])
        }
        if let contactJSON { try Self.storeFetched(contactJSON, etag: nil, fetchedAt: now, in: db) }
        return conflicts.compactMap { $0["field"]?.string.flatMap(ContactField.init(name:)) }
    }

    /// An update or unarchive whose contact is gone from Intercom (404, or 410 merged away: an
    /// archived contact answers so too): the contact is tombstoned and the entry fails with
    /// why. The edits stay with the failed entry: `outbox retry` sends them again (once the
    /// contact is unarchived), `outbox drop` forgets them.
    package func failUpdateOfGoneContact(seq: Int64, contactID: String, failure: OutboxEntry.Failure, now: Int) async throws {
        try await writer.write { db in
            // Settled first: a tombstone spares a contact whose unarchive is still under way.
            try Self.settle(seq: seq, state: .failed, error: failure, now: now, in: db)
            try Self.tombstone(id: contactID, at: now, in: db)
        }
    }
}

/// An outbox entry whose edits met a change of the same field on Intercom.
public struct EditConflict: Sendable, Equatable {
    /// One field: its value when edited, the edit, and Intercom's value now.
    public struct Field: Sendable, Equatable {
        public var field: ContactField
        /// Nil when the contact did not have the field.
        public var base: JSONValue?
        public var mine: JSONValue
        /// Nil when Intercom's contact does not have the field.
        public var theirs: JSONValue?
    }

    /// The entry, for ``IntercomMirror/resolve(seq:keep:field:)``.
    public var seq: Int64
    public var contactID: String
    public var fields: [Field]
}

/// Which side of a conflict to keep.
public enum ConflictChoice: String, Sendable, CaseIterable {
    /// Ours: the next flush sends it again, over Intercom's value.
    case mine
    /// Intercom's: the edit is dropped, and the mirror shows Intercom's value again.
    case theirs
}

extension ContactMirror {
    /// The entries in conflict, in queue order.
    package func editConflicts() throws -> [EditConflict] {
        try writer.read { db in
            try Row.fetchAll(
                db, sql: "SELECT seq, contact_id, payload FROM outbox WHERE state = 'conflict' ORDER BY seq"
            ).map { row in
                EditConflict(seq: row[0], contactID: row[1] ?? "", fields: Self.conflictFields(row[2] ?? "{}"))
            }
        }
    }

    /// Writes `edits` as the "mine" of the contact's fields in conflict.
    /// A field edited back to Intercom's value (`restored`) is in conflict no more, and an
    /// entry left with no conflict is settled.
    static func renewConflicts(
        of contactID: String, with edits: [FieldEdit], restored: [ContactField], now: Int, in db: Database
    ) throws {
        let rows = try Row.fetchAll(
            db, sql: "SELECT seq, payload FROM outbox WHERE state = 'conflict' AND contact_id = ?", arguments: [contactID])
        for row in rows {
            let conflicts = conflictFields(row[1] ?? "{}").filter { !restored.contains($0.field) }.map { conflict in
                var renewed = conflict
                if let edit = edits.first(where: { $0.field == conflict.field }) { renewed.mine = edit.mine }
                return renewed
            }
            guard !conflicts.isEmpty else {
                try settle(
                    seq: row[0], state: .superseded,
                    error: OutboxEntry.Failure(
                        status: nil, code: "resolved", message: "settled: your edit was set back to Intercom's value",
                        requestID: nil), now: now, in: db)
                continue
            }
            try db.execute(
                sql: "UPDATE outbox SET payload = ? WHERE seq = ?",
                arguments: [conflictPayload(conflicts).jsonText, row[0] as Int64])
        }
    }

    /// An entry's payload listing `conflicts`.
    static func conflictPayload(_ conflicts: [EditConflict.Field]) -> JSONValue {
        .object([
            "conflicts": .array(
                conflicts.map {
                    .object([
                        "field": .string($0.field.description), "base": $0.base ?? .null, "mine": $0.mine,
                        "theirs": $0.theirs ?? .null,
                    ])
                })
        ])
    }

    /// The fields of a contact that an entry in conflict holds.
    static func fieldsInConflict(of contactID: String, in db: Database) throws -> Set<ContactField> {
        let payloads = try String.fetchAll(
            db, sql: "SELECT payload FROM outbox WHERE state = 'conflict' AND contact_id = ?", arguments: [contactID])
        return Set(payloads.flatMap { conflictFields($0).map(\.field) })
    }

    private static func conflictFields(_ payload: String) -> [EditConflict.Field] {
        guard case .array(let items)? = (try? JSONValue(jsonText: payload))?["conflicts"] else { return [] }
        return items.compactMap { item in
            guard let field = item["field"]?.string.flatMap(ContactField.init(name:)), let mine = item["mine"] else {
                return nil
            }
            func optional(_ value: JSONValue?) -> JSONValue? { value == .null ? nil : value }
            return EditConflict.Field(field: field, base: optional(item["base"]), mine: mine, theirs: optional(item["theirs"]))
        }
    }

    /// Settles the conflict of entry `seq`, for `field` or every field of it: ours is queued
    /// again against Intercom's value (the next flush sends it), or Intercom's is kept and
    /// shown. The entry is settled once no field of it is left in conflict.
    package func resolveConflict(seq: Int64, keep choice: ConflictChoice, field: ContactField?, now: Int) throws
        -> StagedEdit
    {
        try writer.write { db in
            guard let entry = try Self.entry(seq: seq, in: db) else {
                throw OutboxError(.noSuchEntry, "no outbox entry #\(seq)")
            }
            guard entry.state == .conflict, let contactID = entry.contactID else {
                throw OutboxError(.wrongState, "entry #\(seq) is \(entry.state.rawValue), not in conflict")
            }
            let conflicts = Self.conflictFields(entry.payload)
            let chosen = conflicts.filter { field == nil || $0.field == field }
            if let field, chosen.isEmpty {
                let fields = conflicts.map(\.field.description).joined(separator: ", ")
                throw OutboxError(.wrongState, "entry #\(seq) has no conflict on \(field); it has: \(fields)")
            }
            let edits = try Self.edits(of: contactID, in: db)
            for conflict in chosen {
                guard let edit = edits.first(where: { $0.field == conflict.field }) else { continue }
                switch choice {
                case .mine:
                    try db.execute(
                        sql: "UPDATE contact_edits SET base = server, edited_at = ? WHERE contact_id = ? AND field = ?",
                        arguments: [now, contactID, edit.field.description])
                case .theirs:
                    try db.execute(
                        sql: "DELETE FROM contact_edits WHERE contact_id = ? AND field = ?",
                        arguments: [contactID, edit.field.description])
                    try Self.restore(edit, of: contactID, in: db)
                }
            }
            let left = conflicts.filter { remaining in !chosen.contains { $0.field == remaining.field } }
            let pending = try Self.edits(of: contactID, in: db).filter { edit in
                !left.contains { $0.field == edit.field }
            }
            let queued = try Self.queueUpdate(of: contactID, needed: !pending.isEmpty, now: now, in: db)
            if left.isEmpty {
                let outcome =
                    choice == .mine
                    ? "settled by keeping yours" + (queued.map { ", which entry #\($0) sends" } ?? "")
                    : "settled by keeping Intercom's value"
                try Self.settle(
                    seq: seq, state: .superseded,
                    error: OutboxEntry.Failure(status: nil, code: "resolved", message: outcome, requestID: nil),
                    remoteID: contactID, now: now, in: db)
            } else {
                try db.execute(
                    sql: "UPDATE outbox SET payload = ?, updated_at = ? WHERE seq = ?",
                    arguments: [Self.conflictPayload(left).jsonText, now, seq])
            }
            return StagedEdit(contactID: contactID, seq: queued, pendingFields: pending.map(\.field))
        }
    }

    /// Shows Intercom's value of an edited field again, in the body and the columns.
    private static func restore(_ edit: FieldEdit, of contactID: String, in db: Database) throws {
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT row_id, contact_body(body) FROM contacts WHERE id = ?", arguments: [contactID]),
            case .object(var body) = try? JSONValue(jsonText: row[1] as String? ?? "{}")
        else { return }
        restore(edit.field, to: edit.server, in: &body)
        try writeFields(of: body, toRow: row[0], in: db)
    }
}
