import GRDB
import IntercomJSON

/// What an outbox entry needs to go out, read as it is marked in flight.
package enum EntryReadiness: Sendable, Equatable {
    /// Marked in flight: the request's body (a message's, recipient and sender filled in) or,
    /// for a tagging, the contact and the tag's name.
    case message(body: String, newRecipient: Bool)
    case tagging(contactID: String, name: String)
    /// Marked in flight: a note's contact and request body.
    case note(contactID: String, body: String)
    /// The contact's create has not been pushed.
    case blocked
    /// No longer pending.
    case gone
}

/// The writes of a flush, each one transaction: an entry is committed `in_flight` before its
/// request and settled after it, so that a crash between the two is found and never sent twice.
extension ContactMirror {
    /// Starts a flush: entries a killed flush left in flight are settled (`unknown` for
    /// messages, `pending` for the rest); returns the messages made unknown, and how many
    /// entries wait to be sent.
    package func beginFlush(now: Int) async throws -> (interrupted: [Int64], queued: Int) {
        try await writer.write { db in
            let interrupted = try Self.recoverInterruptedEntries(now: now, in: db)
            return (interrupted, try Self.pendingEntryCount(in: db))
        }
    }

    /// The entries left failed, unknown, in conflict and pending.
    package func outboxLeft() async throws -> (failed: Int, unknown: Int, conflict: Int, pending: Int) {
        try await writer.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT count(*) FROM outbox WHERE state = 'failed'") ?? 0,
                try Int.fetchOne(db, sql: "SELECT count(*) FROM outbox WHERE state = 'unknown'") ?? 0,
                try Int.fetchOne(db, sql: "SELECT count(*) FROM outbox WHERE state = 'conflict'") ?? 0,
                try Self.pendingEntryCount(in: db)
            )
        }
    }

    /// Pending entries, imported contacts still waiting for their create entry included.
    private static func pendingEntryCount(in db: Database) throws -> Int {
        try (Int.fetchOne(db, sql: "SELECT count(*) FROM outbox WHERE state = 'pending'") ?? 0)
            + importedCreatesWaiting(in: db)
    }

    /// Writes the create entries of up to `limit` imported contacts; true while more wait.
    package func queueImportedCreates(limit: Int, now: Int) async throws -> Bool {
        try await writer.write { db in try Self.queueImportedCreates(limit: limit, now: now, in: db) }
    }

    /// Up to `limit` pending entries of `kinds` after `seq`, in queue order.
    package func pendingEntries(of kinds: [OutboxEntry.Kind], after seq: Int64, limit: Int) async throws -> [OutboxEntry] {
        try await writer.read { db in
            try OutboxEntry.fetchAll(
                db,
                sql: """
                    SELECT \(OutboxEntry.columns) FROM outbox
                    WHERE state = 'pending' AND kind IN (\(databaseQuestionMarks(count: kinds.count))) AND seq > ?
                    ORDER BY seq LIMIT ?
                    """, arguments: StatementArguments(kinds.map(\.rawValue)) + [seq, limit])
        }
    }

    /// Commits an entry `in_flight` before its request; false when it is no longer pending.
    package func markInFlight(seq: Int64, now: Int) async throws -> Bool {
        try await writer.write { db in try Self.markInFlight(seq: seq, now: now, in: db) }
    }

    /// Records an entry's outcome.
    package func settle(
        seq: Int64, state: OutboxState, error: OutboxEntry.Failure? = nil, remoteID: String? = nil,
        nextAttemptAt: Int? = nil, now: Int
    ) async throws {
        try await writer.write { db in
            try Self.settle(
                seq: seq, state: state, error: error, remoteID: remoteID, nextAttemptAt: nextAttemptAt, now: now, in: db)
        }
    }

    /// A pushed create: the local contact becomes the Intercom one, its dependents follow.
    package func completeCreate(seq: Int64, localID: String, contactJSON: String, now: Int) async throws {
        try await writer.write { db in
            _ = try Self.completeCreate(seq: seq, localID: localID, contactJSON: contactJSON, now: now, in: db)
        }
    }

    /// A create that found its contact already on Intercom (a 409 naming it) and took it
    /// over: the local contact becomes that one, and each staged field Intercom holds another
    /// value for (`disputed`: mine and theirs, no base, since the create had none) waits as a
    /// conflict of a new update entry, shown with our value on top, for a person to choose. A
    /// field the contact already has a pending edit of is left to that edit.
    package func completeAdoptedCreate(
        seq: Int64, localID: String, contactJSON: String, disputed: [FieldEdit], now: Int
    ) async throws {
        try await writer.write { db in
            try Self.completeAdoptedCreate(
                seq: seq, localID: localID, contactJSON: contactJSON, disputed: disputed, now: now, in: db)
        }
    }

    static func completeAdoptedCreate(
        seq: Int64, localID: String, contactJSON: String, disputed: [FieldEdit], now: Int, in db: Database
    ) throws {
        let id = try Self.completeCreate(seq: seq, localID: localID, contactJSON: contactJSON, now: now, in: db)
        var conflicts: [JSONValue] = []
        for edit in disputed {
            try db.execute(
                sql: """
                    INSERT INTO contact_edits (contact_id, field, base, mine, server, edited_at)
                    VALUES (?, ?, NULL, ?, ?, ?) ON CONFLICT (contact_id, field) DO NOTHING
                    """, arguments: [id, edit.field.description, edit.mine.jsonText, edit.server?.jsonText, now])
            guard db.changesCount > 0 else { continue }
            conflicts.append(
                .object([
                    "field": .string(edit.field.description), "base": .null, "mine": edit.mine,
                    "theirs": edit.server ?? .null,
                ]))
        }
        guard !conflicts.isEmpty else { return }
        let entry = try Self.insertEntry(.updateContact, contactID: id, dependsOn: nil, payload: "{}", now: now, in: db)
        try db.execute(
            sql: "UPDATE outbox SET state = 'conflict', payload = ?, remote_id = ? WHERE seq = ?",
            arguments: [JSONValue.object(["conflicts": .array(conflicts)]).jsonText, id, entry])
        try Self.reapplyEdits(to: [id], in: db)
    }

    /// A tagging Intercom applied: the mirror's links follow, and the entry is sent.
    package func completeTagging(seq: Int64, tagID: String?, name: String, contactID: String, untag: Bool, now: Int)
        async throws
    {
        try await writer.write { db in
            if let tagID {
                try Self.recordTagging(tagID: tagID, name: name, contactID: contactID, untag: untag, in: db)
            }
            try Self.settle(seq: seq, state: .sent, remoteID: tagID, now: now, in: db)
        }
    }

    /// Marks a message in flight and builds its request, in one transaction, from the entry's
    /// current recipient (remapped if its create was pushed). A recipient whose create was sent
    /// less than `grace` seconds ago is new: Intercom may not accept messages to it yet.
    package func prepareMessage(seq: Int64, senderID: String?, now: Int, grace: Int) async throws -> EntryReadiness {
        try await writer.write { db in
            guard let entry = try Self.entry(seq: seq, in: db), entry.state == .pending else { return .gone }
            var newRecipient = false
            if let dependency = entry.dependsOn {
                guard let create = try Self.entry(seq: dependency, in: db), create.state == .sent else {
                    return .blocked
                }
                newRecipient = create.updatedAt >= now - grace
            }
            let recipientID = try Self.resolve(id: entry.contactID ?? "", in: db)
            guard
                let recipient = try Row.fetchOne(
                    db, sql: "SELECT id, role, state FROM contacts WHERE id = ?", arguments: [recipientID]),
                recipient["state"] as String != ContactState.pending.rawValue
            else { return .blocked }
            guard case .object(var fields) = try JSONValue(jsonText: entry.payload) else {
                throw MirrorError(.corrupt, detail: "outbox entry #\(seq) has a payload that is not a JSON object")
            }
            if fields["from"] == nil, let senderID {
                fields["from"] = .object(["type": "admin", "id": .string(senderID)])
            }
            fields["to"] = .object(["type": .string(recipient["role"]), "id": .string(recipient["id"])])
            guard try Self.markInFlight(seq: seq, now: now, in: db) else { return .gone }
            return .message(body: JSONValue.object(fields).jsonText, newRecipient: newRecipient)
        }
    }

    /// Marks a tagging in flight and names its contact, in one transaction.
    package func prepareTagging(seq: Int64, now: Int) async throws -> EntryReadiness {
        try await writer.write { db in
            guard let entry = try Self.entry(seq: seq, in: db), entry.state == .pending else { return .gone }
            if let dependency = entry.dependsOn {
                guard let create = try Self.entry(seq: dependency, in: db), create.state == .sent else {
                    return .blocked
                }
            }
            let contactID = try Self.resolve(id: entry.contactID ?? "", in: db)
            guard
                let state = try String.fetchOne(db, sql: "SELECT state FROM contacts WHERE id = ?", arguments: [contactID]),
                state != ContactState.pending.rawValue
            else { return .blocked }
            guard let name = (try? JSONValue(jsonText: entry.payload))?["name"]?.string else {
                throw MirrorError(.corrupt, detail: "outbox entry #\(seq) names no tag")
            }
            guard try Self.markInFlight(seq: seq, now: now, in: db) else { return .gone }
            return .tagging(contactID: contactID, name: name)
        }
    }

    /// The admin messages are sent as when they name none, once read from `GET /me`.
    package func defaultSenderID() throws -> String? { try syncState(.adminID) }

    package func rememberDefaultSender(_ id: String) throws { try setSyncState(.adminID, to: id) }
}
