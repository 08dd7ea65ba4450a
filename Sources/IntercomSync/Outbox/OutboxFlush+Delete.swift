import Foundation

/// Sending `delete_contact`, `archive_contact` and `unarchive_contact` entries:
/// `DELETE /contacts/{id}` and `POST /contacts/{id}/archive` or `/unarchive`, each of which may
/// be repeated without harm. A contact Intercom no longer has (404, or 410 merged away) counts
/// as deleted.
extension OutboxFlush {
    func remove(_ entry: OutboxEntry, in run: FlushRun) async throws {
        defer { run.advance() }
        guard let contactID = try await mirror.prepareDelete(seq: entry.seq, now: now()) else { return }
        let path = "/contacts/\(IntercomClient.pathComponent(contactID))"
        do {
            switch entry.kind {
            case .deleteContact:
                _ = try await client.sendJSON(
                    "DELETE", path, accepting: [404, 410], maximumBodyBytes: HTTPRequest.maximumObjectBytes)
                try await mirror.completeDelete(seq: entry.seq, contactID: contactID, now: now())
                run.update { $0.contactsDeleted += 1 }
                return
            default:
                let action = entry.kind == .archiveContact ? "archive" : "unarchive"
                _ = try await client.sendJSON("POST", "\(path)/\(action)", maximumBodyBytes: HTTPRequest.maximumObjectBytes)
                run.update { $0.contactsArchived += 1 }
            }
            try await settle(entry, .sent, remoteID: contactID)
        } catch let error as IntercomError {
            try await settleFailure(entry, error, in: run)
        }
    }
}
