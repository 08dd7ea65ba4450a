import Foundation

/// Sending `send_message` entries (a message to a pending contact waits; a message is sent at most once).
extension OutboxFlush {
    /// The admin to send as when a message names none: `GET /me`, cached in `sync_state`.
    /// Nil when every message names its sender, or when `/me` could not be read (the flush is
    /// then stopped, or those messages are deferred).
    func sender(for messages: [OutboxEntry], in run: FlushRun) async throws -> Result<String, IntercomError>? {
        let needed = messages.contains { (try? JSONValue(jsonText: $0.payload))?["from"] == nil }
        guard needed else { return nil }
        if let cached = try mirror.defaultSenderID() { return .success(cached) }
        do {
            let me = try await client.sendJSON("GET", "/me", maximumBodyBytes: HTTPRequest.maximumObjectBytes)
            let admin = try JSONValue(jsonText: me.text)
            guard let id = admin["id"]?.string ?? admin["id"]?.int.map(String.init) else {
                throw IntercomError(
                    kind: .transient, status: me.response.status, code: "malformed_response",
                    message: "GET /me gave no admin id", operation: "GET /me")
            }
            try mirror.rememberDefaultSender(id)
            return .success(id)
        } catch let error as IntercomError {
            if error.kind == .authentication { run.stop(error) }
            return .failure(error)
        }
    }

    func send(_ entry: OutboxEntry, sender: Result<String, IntercomError>?, in run: FlushRun) async throws {
        defer { run.advance() }
        if case .failure(let error)? = sender, (try? JSONValue(jsonText: entry.payload))?["from"] == nil {
            try await settleFailure(entry, error, in: run)
            return
        }
        let senderID = try? sender?.get()
        let readiness = try await mirror.prepareMessage(
            seq: entry.seq, senderID: senderID, now: now(), grace: Self.newContactGrace)
        let body: String
        let newRecipient: Bool
        switch readiness {
        case .gone, .tagging, .note: return
        case .blocked:
            run.update { $0.blocked += 1 }
            return
        case .message(let text, let isNew):
            body = text
            newRecipient = isNew
        }
        do {
            let answer = try await client.sendJSON(
                "POST", "/messages", json: body, retry: client.retryPolicy.scoped(.unprocessedOnly))
            let message = try? JSONValue(jsonText: answer.text)
            let id = message?["id"]?.string ?? message?["id"]?.int.map(String.init)
            try await settle(entry, .sent, remoteID: id)
            run.update { $0.messagesSent += 1 }
        } catch let error as IntercomError {
            try await settleMessageFailure(entry, error, newRecipient: newRecipient, in: run)
        }
    }

    /// A message (or a note) that did not plainly succeed. Only an answer that proves Intercom
    /// did not act (unreachable, 429, a 4xx) leaves it retryable; anything ambiguous makes it
    /// `unknown`.
    func settleMessageFailure(_ entry: OutboxEntry, _ error: IntercomError, newRecipient: Bool, in run: FlushRun)
        async throws
    {
        let failure = OutboxEntry.Failure(error)
        if let status = error.status, (200..<300).contains(status) {
            // Intercom accepted it but the answer could not be read: sent, remote id unknown.
            try await settle(entry, .sent, error: failure)
            run.update { if entry.kind == .addNote { $0.notesAdded += 1 } else { $0.messagesSent += 1 } }
        } else if error.kind == .transient && !(error.isOffline || error.status == 429) {
            try await settle(entry, .unknown, error: failure)
            run.update { $0.unknown += 1 }
            run.noteFailure(error)
        } else if error.kind == .permanent && error.status == 404 && newRecipient
            && !Self.otherResourceMissing.contains(error.code)
        {
            var notYet = failure
            notYet.message =
                "Intercom does not accept messages to this new contact yet (\(error.message)); flush again in a minute"
            try await settle(entry, .pending, error: notYet, retryAfter: Self.deferral)
            run.update { $0.deferred += 1 }
        } else {
            try await settleFailure(entry, error, in: run)
        }
    }

    /// The 404s that name something other than the recipient (the admin the message is from):
    /// waiting for the new contact would not help them.
    static let otherResourceMissing: Set<String> = ["admin_not_found", "team_not_found"]
}
