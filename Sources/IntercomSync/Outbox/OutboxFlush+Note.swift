import Foundation

/// Sending `add_note` entries: `POST /contacts/{id}/notes`, at most once, as a message is sent.
/// A note for a contact created offline waits for its create and goes to the Intercom id it was
/// given.
extension OutboxFlush {
    func addNote(_ entry: OutboxEntry, in run: FlushRun) async throws {
        defer { run.advance() }
        let contactID: String
        let body: String
        switch try await mirror.prepareNote(seq: entry.seq, now: now()) {
        case .gone, .message, .tagging: return
        case .blocked:
            run.update { $0.blocked += 1 }
            return
        case .note(let id, let request):
            contactID = id
            body = request
        }
        do {
            let answer = try await client.sendJSON(
                "POST", "/contacts/\(IntercomClient.pathComponent(contactID))/notes", json: body,
                retry: client.retryPolicy.scoped(.unprocessedOnly), maximumBodyBytes: HTTPRequest.maximumObjectBytes)
            let note = try? JSONValue(jsonText: answer.text)
            try await settle(entry, .sent, remoteID: note?["id"]?.string ?? note?["id"]?.int.map(String.init))
            if let note { try await mirror.storeNotes([note], of: contactID, complete: false) }
            run.update { $0.notesAdded += 1 }
        } catch let error as IntercomError {
            try await settleMessageFailure(entry, error, newRecipient: false, in: run)
        }
    }
}
