import Foundation
import GRDB

/// Sending `tag_contact` and `untag_contact` entries: `POST /tags` with the tag's name and the
/// contact, which makes the tag when Intercom has none of that name.
///
/// Intercom applies a tagging once however often it is sent, so an entry whose answer was lost
/// is simply sent again by a later flush. It always goes to the contact it was staged for: a
/// contact created offline is named by the Intercom id its create was given, and an entry waits
/// until that create is sent. Entries go one at a time, in queue order, so that tagging and
/// untagging one contact with one tag end as they were staged.
extension OutboxFlush {
    /// What a tagging needs to go out, read as it is marked in flight.
    private enum TaggingReadiness {
        case ready(contactID: String, name: String)
        /// The contact's create has not been pushed.
        case blocked
        /// No longer pending.
        case gone
    }

    func applyTagging(_ entry: OutboxEntry, in run: FlushRun) async throws {
        defer { run.advance() }
        let readiness = try await mirror.writer.write { [now] db in try Self.prepareTagging(entry.seq, now: now(), in: db) }
        let contactID: String
        let name: String
        switch readiness {
        case .gone: return
        case .blocked:
            run.update { $0.blocked += 1 }
            return
        case .ready(let id, let tagName):
            contactID = id
            name = tagName
        }
        let untag = entry.kind == .untagContact
        var user: [String: JSONValue] = ["id": .string(contactID)]
        if untag { user["untag"] = .bool(true) }
        let body = JSONValue.object(["name": .string(name), "users": .array([.object(user)])]).jsonText
        do {
            let answer = try await client.sendJSON("POST", "/tags", json: body)
            let tag = try? JSONValue(jsonText: answer.text)
            let tagID = tag?["id"]?.string ?? tag?["id"]?.int.map(String.init)
            let time = now()
            try await mirror.writer.write { db in
                if let tagID {
                    try ContactMirror.recordTagging(
                        tagID: tagID, name: tag?["name"]?.string ?? name, contactID: contactID, untag: untag, in: db)
                }
                try ContactMirror.settle(seq: entry.seq, state: .sent, remoteID: tagID, now: time, in: db)
            }
            run.update { $0.taggings += 1 }
        } catch let error as IntercomError {
            try await settleFailure(entry, error, in: run)
        }
    }

    /// Marks the tagging in flight and names its contact, in one transaction.
    private static func prepareTagging(_ seq: Int64, now: Int, in db: Database) throws -> TaggingReadiness {
        guard let entry = try ContactMirror.entry(seq: seq, in: db), entry.state == .pending else { return .gone }
        if let dependency = entry.dependsOn {
            guard let create = try ContactMirror.entry(seq: dependency, in: db), create.state == .sent else {
                return .blocked
            }
        }
        let contactID = try ContactMirror.resolve(id: entry.contactID ?? "", in: db)
        guard
            let state = try String.fetchOne(db, sql: "SELECT state FROM contacts WHERE id = ?", arguments: [contactID]),
            state != ContactState.pending.rawValue
        else { return .blocked }
        guard let name = (try? JSONValue(jsonText: entry.payload))?["name"]?.string else {
            throw MirrorError(.corrupt, detail: "outbox entry #\(seq) names no tag")
        }
        guard try ContactMirror.markInFlight(seq: seq, now: now, in: db) else { return .gone }
        return .ready(contactID: contactID, name: name)
    }
}
