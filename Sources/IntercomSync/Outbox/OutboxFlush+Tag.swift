import Foundation

/// Sending `tag_contact` and `untag_contact` entries: `POST /tags` with the tag's name and the
/// contact, which makes the tag when Intercom has none of that name.
///
/// Intercom applies a tagging once however often it is sent, so an entry whose answer was lost
/// is simply sent again by a later flush. It always goes to the contact it was staged for: a
/// contact created offline is named by the Intercom id its create was given, and an entry waits
/// until that create is sent. Entries go one at a time, in queue order, so that tagging and
/// untagging one contact with one tag end as they were staged.
extension OutboxFlush {
    func applyTagging(_ entry: OutboxEntry, in run: FlushRun) async throws {
        defer { run.advance() }
        let readiness = try await mirror.prepareTagging(seq: entry.seq, now: now())
        let contactID: String
        let name: String
        switch readiness {
        case .gone, .message, .note: return
        case .blocked:
            run.update { $0.blocked += 1 }
            return
        case .tagging(let id, let tagName):
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
            try await mirror.completeTagging(
                seq: entry.seq, tagID: tagID, name: tag?["name"]?.string ?? name, contactID: contactID, untag: untag,
                now: now())
            run.update { $0.taggings += 1 }
        } catch let error as IntercomError {
            try await settleFailure(entry, error, in: run)
        }
    }
}
