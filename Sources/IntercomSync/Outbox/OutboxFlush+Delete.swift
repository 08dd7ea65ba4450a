import Foundation

/// Sending `delete_contact`, `archive_contact` and `unarchive_contact` entries:
/// `DELETE /contacts/{id}` and `POST /contacts/{id}/archive` or `/unarchive`, each of which may
/// be repeated without harm. A contact Intercom no longer has (404, or 410 merged away) counts
/// as deleted; an unarchive of one fails, and the mirror hides the contact again.
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
        } catch let error as IntercomError where entry.kind == .unarchiveContact && (error.status == 404 || error.status == 410) {
            // Intercom has no such contact to unarchive: it was deleted or merged away, and the
            // mirror hides it again.
            var failure = OutboxEntry.Failure(error)
            failure.message =
                "contact \(contactID) is gone from Intercom (deleted, archived, or merged into another): \(error.message)"
            try await mirror.failUpdateOfGoneContact(seq: entry.seq, contactID: contactID, failure: failure, now: now())
            run.update { $0.failed += 1 }
        } catch let error as IntercomError {
            try await settleFailure(entry, error, in: run)
        }
    }
}
