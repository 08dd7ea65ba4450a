import Foundation
import GRDB

/// A mirror that follows a team's store hands its outbox to the team's (`OutboxUpstream`):
/// its pending entries are pushed, marked `pushed`, and settled when the store says how they
/// ended, as a flush of its own would have settled them.
extension ContactMirror {
    /// The mirror's name among the origins of the upstream's entries: made at its first push
    /// (the host's name and a random part), kept for good.
    package func outboxOrigin() throws -> String {
        try writer.write { db in
            if let origin = try Self.syncState(.outboxOrigin, in: db) { return origin }
            let host = ProcessInfo.processInfo.hostName.prefix(40)
            let origin = "\(host)/\(UUID().uuidString.prefix(8).lowercased())"
            try Self.setSyncState(.outboxOrigin, to: origin, in: db)
            return origin
        }
    }

    /// The upstream the mirror follows, as recorded (a URL without its password).
    package func recordedUpstream() throws -> String? { try syncState(.upstreamURL) }

    package func recordUpstream(_ url: String) throws { try setSyncState(.upstreamURL, to: url) }

    /// Up to `limit` pending entries, in queue order, as the upstream's workers take them:
    /// an update carries its contact's edits (those not in conflict) with their bases, a
    /// message its recipient's role, and an entry that waits for a create names it when that
    /// create is still to be sent. Imported contacts get their create entries first. An update
    /// whose edits were all sent, settled or dropped meanwhile is settled as superseded here.
    ///
    /// Reads the entries after `seq`, and answers the last one it read (nil at the queue's end).
    package func entriesToPush(after seq: Int64, limit: Int, now: Int) async throws -> (
        entries: [PushedEntry], last: Int64?
    ) {
        try await writer.write { db in
            while try Self.queueImportedCreates(limit: limit, now: now, in: db) {}
            let entries = try OutboxEntry.fetchAll(
                db,
                sql: "SELECT \(OutboxEntry.columns) FROM outbox WHERE state = 'pending' AND seq > ? ORDER BY seq LIMIT ?",
                arguments: [seq, limit])
            var pushed: [PushedEntry] = []
            for entry in entries {
                var payload = entry.payload
                var awaited: Int64?
                if let dependency = entry.dependsOn {
                    let state = try String.fetchOne(db, sql: "SELECT state FROM outbox WHERE seq = ?", arguments: [dependency])
                    if state == OutboxState.pending.rawValue || state == OutboxState.pushed.rawValue {
                        awaited = dependency
                    } else if state != OutboxState.sent.rawValue {
                        continue  // Its create failed: it waits here, as it would for a flush.
                    }
                }
                switch entry.kind {
                case .updateContact:
                    guard let id = entry.contactID else { continue }
                    let waiting = try Self.fieldsInConflict(of: id, in: db)
                    let edits = try Self.edits(of: id, in: db).filter { !waiting.contains($0.field) }
                    guard !edits.isEmpty else {
                        try Self.settle(
                            seq: entry.seq, state: .superseded,
                            error: OutboxEntry.Failure(
                                status: nil, code: "nothing_to_send",
                                message: "nothing left to send: the contact's edits were sent, settled or dropped meanwhile",
                                requestID: nil), now: now, in: db)
                        continue
                    }
                    payload =
                        JSONValue.object([
                            "edits": .array(
                                edits.map { edit in
                                    var item: [String: JSONValue] = ["field": .string(edit.field.description), "mine": edit.mine]
                                    if let base = edit.base { item["base"] = base }
                                    return .object(item)
                                })
                        ]).jsonText
                case .sendMessage:
                    guard case .object(var fields) = try JSONValue(jsonText: entry.payload) else { continue }
                    let recipient = try Self.resolve(id: entry.contactID ?? "", in: db)
                    let role = try String.fetchOne(db, sql: "SELECT role FROM contacts WHERE id = ?", arguments: [recipient])
                    fields["to"] = .object(["type": .string(role ?? "user")])
                    payload = JSONValue.object(fields).jsonText
                default:
                    break
                }
                // An entry that carries an error ended before (in the team's outbox, or in a
                // flush of this mirror's own), and a person queued it again, at its updated_at.
                pushed.append(
                    PushedEntry(
                        originSeq: entry.seq, kind: entry.kind, contactID: entry.contactID, dependsOnOriginSeq: awaited,
                        payload: payload, createdAt: entry.createdAt,
                        retryMark: entry.lastError == nil ? nil : entry.updatedAt))
            }
            return (pushed, entries.last?.seq)
        }
    }

    /// Marks entries the upstream took as pushed (those still pending).
    package func markPushed(_ seqs: [Int64], now: Int) async throws {
        guard !seqs.isEmpty else { return }
        try await writer.write { db in
            try db.execute(
                sql: """
                    UPDATE outbox SET state = 'pushed', updated_at = ?
                    WHERE state = 'pending' AND seq IN (SELECT value FROM json_each(?))
                    """, arguments: [now, JSONValue.array(seqs.map { .int($0) }).jsonText])
        }
    }

    /// The upstream change number up to which outcomes were applied (0 before any).
    package func upstreamOutcomeChange() throws -> Int64 {
        try syncState(.upstreamOutcomeChange).flatMap { Int64($0) } ?? 0
    }

    /// Settles pushed entries as the upstream says they ended, in one transaction with the
    /// change number reached: a create's local contact becomes the Intercom one (with the
    /// fields Intercom held other values for waiting as a conflict), an update's sent fields
    /// stop being edits and its conflicting ones wait for a person, a delete's edits go with the
    /// contact. An outcome of an entry that is no longer pushed (applied before) changes
    /// nothing. Answers how many entries it settled.
    package func applyOutcomes(_ outcomes: [UpstreamOutcome], now: Int) async throws -> Int {
        guard let last = outcomes.last?.change else { return 0 }
        return try await writer.write { db in
            var applied = 0
            for outcome in outcomes {
                // An entry a lease's end made unknown may have been sent after all.
                guard let entry = try Self.entry(seq: outcome.originSeq, in: db), entry.kind == outcome.kind,
                    entry.state == .pushed || (entry.state == .unknown && outcome.state == .sent)
                else { continue }
                try Self.apply(outcome, to: entry, now: now, in: db)
                applied += 1
            }
            try Self.setSyncState(.upstreamOutcomeChange, to: String(last), in: db)
            return applied
        }
    }

    private static func apply(_ outcome: UpstreamOutcome, to entry: OutboxEntry, now: Int, in db: Database) throws {
        let detail = try? outcome.outcome.map { try JSONValue(jsonText: $0) }
        switch (entry.kind, outcome.state) {
        case (.createContact, .sent):
            guard let id = outcome.remoteID, let localID = entry.contactID else { break }
            var body = outcome.contactBody
            if body == nil, case .object(var fields) = try JSONValue(jsonText: entry.payload) {
                // The replica lost it since: the contact as staged, under its Intercom id.
                fields["type"] = "contact"
                fields["id"] = .string(id)
                body = JSONValue.object(fields).jsonText
            }
            guard let body else { break }
            var disputed: [FieldEdit] = []
            if case .array(let items)? = detail?["disputed"] {
                disputed = items.compactMap { item in
                    guard let field = item["field"]?.string.flatMap(ContactField.init(name:)), let mine = item["mine"] else {
                        return nil
                    }
                    let theirs = item["theirs"]
                    return FieldEdit(field: field, base: nil, mine: mine, server: theirs == .null ? nil : theirs)
                }
            }
            try completeAdoptedCreate(seq: entry.seq, localID: localID, contactJSON: body, disputed: disputed, now: now, in: db)
            return
        case (.updateContact, .sent), (.updateContact, .conflict):
            guard let id = entry.contactID.map({ try? resolve(id: $0, in: db) }) ?? nil,
                case .array(let items)? = try JSONValue(jsonText: outcome.payload)["edits"]
            else { break }
            var theirs: [ContactField: JSONValue?] = [:]
            if case .array(let conflicts)? = detail?["conflicts"] {
                for conflict in conflicts {
                    guard let field = conflict["field"]?.string.flatMap(ContactField.init(name:)) else { continue }
                    let value = conflict["theirs"]
                    theirs[field] = value == .null ? nil : value
                }
            }
            var edits: [FieldEdit] = []
            var outcomes: [ContactField: EditOutcome] = [:]
            for item in items {
                guard let field = item["field"]?.string.flatMap(ContactField.init(name:)), let mine = item["mine"] else {
                    continue
                }
                edits.append(FieldEdit(field: field, base: item["base"], mine: mine, server: nil))
                if let value = theirs[field] { outcomes[field] = .conflict(theirs: value) } else { outcomes[field] = .sent(mine) }
            }
            _ = try completeUpdate(
                seq: entry.seq, contactID: id, edits: edits, outcomes: outcomes, contactJSON: outcome.contactBody, now: now,
                in: db)
            // An edit made while the entry was upstream waits for an entry of its own.
            let waiting = try fieldsInConflict(of: id, in: db)
            if try Self.edits(of: id, in: db).contains(where: { !waiting.contains($0.field) }),
                try Int.fetchOne(
                    db,
                    sql: """
                        SELECT count(*) FROM outbox
                        WHERE contact_id = ? AND kind = 'update_contact' AND state IN ('pending', 'pushed')
                        """, arguments: [id]) == 0
            {
                _ = try queueUpdate(of: id, needed: true, now: now, in: db)
            }
            return
        case (.deleteContact, .sent):
            if let id = entry.contactID {
                try db.execute(sql: "DELETE FROM contact_edits WHERE contact_id = ?", arguments: [id])
            }
        case (.tagContact, .sent), (.untagContact, .sent):
            if let tagID = outcome.remoteID, let id = entry.contactID,
                let name = (try? JSONValue(jsonText: entry.payload))?["name"]?.string
            {
                try recordTagging(
                    tagID: tagID, name: name, contactID: try resolve(id: id, in: db), untag: entry.kind == .untagContact, in: db)
            }
        case (.updateContact, .failed), (.unarchiveContact, .failed):
            // Gone from Intercom: the mirror hides the contact, as a flush of its own would.
            if outcome.failure?.status == 404 || outcome.failure?.status == 410, let id = entry.contactID {
                try settle(seq: entry.seq, state: .failed, error: outcome.failure, now: now, in: db)
                try tombstone(id: try resolve(id: id, in: db), at: now, in: db)
                return
            }
        default:
            break
        }
        try settle(
            seq: entry.seq, state: outcome.state, error: outcome.failure, remoteID: outcome.remoteID, now: now, in: db)
    }
}
