import Foundation

/// Sending `delete_contact` entries: `DELETE /contacts/{id}`, which may be repeated without
/// harm; a contact Intercom no longer has (404, or 410 merged away) counts as deleted.
extension OutboxFlush {
    func deleteContact(_ entry: OutboxEntry, in run: FlushRun) async throws {
        defer { run.advance() }
        guard let contactID = try await mirror.prepareDelete(seq: entry.seq, now: now()) else { return }
        do {
            _ = try await client.sendJSON(
                "DELETE", "/contacts/\(IntercomClient.pathComponent(contactID))", accepting: [404, 410],
                maximumBodyBytes: HTTPRequest.maximumObjectBytes)
            try await settle(entry, .sent, remoteID: contactID)
            run.update { $0.contactsDeleted += 1 }
        } catch let error as IntercomError {
            try await settleFailure(entry, error, in: run)
        }
    }
}
