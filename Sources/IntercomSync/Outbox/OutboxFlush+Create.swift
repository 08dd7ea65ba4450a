import Foundation

/// Pushing `create_contact` entries (creates happen once; a pushed contact takes its Intercom id).
extension OutboxFlush {
    /// `POST /contacts`; on 409 "already exists with id=…" adopts that contact. Either way the
    /// local row becomes the Intercom contact in one transaction.
    func push(_ entry: OutboxEntry, in run: FlushRun) async throws {
        defer { run.advance() }
        guard let localID = entry.contactID, try await markInFlight(entry) else { return }
        do {
            let created = try await client.sendJSON("POST", "/contacts", json: entry.payload)
            try await complete(entry, localID: localID, contactJSON: created.text)
            run.update { $0.contactsCreated += 1 }
        } catch let error as IntercomError {
            guard let existing = Self.conflictingContactID(error) else {
                try await settleFailure(entry, error, in: run)
                return
            }
            do {
                let adopted = try await adopt(existing, archived: error.message.lowercased().contains("archived"), entry: entry)
                try await complete(entry, localID: localID, contactJSON: adopted)
                run.update { $0.contactsAdopted += 1 }
            } catch let error as IntercomError {
                try await settleFailure(entry, error, in: run)
            }
        }
    }

    private func complete(_ entry: OutboxEntry, localID: String, contactJSON: String) async throws {
        try await mirror.completeCreate(seq: entry.seq, localID: localID, contactJSON: contactJSON, now: now())
    }

    /// The id in a 409 `conflict` / `unique_user_constraint` "… already exists with id=<id>".
    static func conflictingContactID(_ error: IntercomError) -> String? {
        guard error.status == 409, error.code == "conflict" || error.code == "unique_user_constraint",
            let marker = error.message.range(of: "id=")
        else { return nil }
        let id = error.message[marker.upperBound...].prefix { $0.isHexDigit }
        return id.isEmpty ? nil : String(id)
    }

    /// Takes over the contact Intercom already has: unarchives it if the 409 said archived,
    /// fetches it, and writes the staged fields it lacks. A create
    /// whose first answer was lost finds its own contact here and writes nothing.
    private func adopt(_ id: String, archived: Bool, entry: OutboxEntry) async throws -> String {
        let path = "/contacts/\(IntercomClient.pathComponent(id))"
        if archived {
            _ = try await client.sendJSON("POST", path + "/unarchive")
        }
        let current = try await client.sendJSON("GET", path)
        let staged = try JSONValue(jsonText: entry.payload)
        let changes = Self.fieldsToWrite(staged, over: try JSONValue(jsonText: current.text))
        guard !changes.isEmpty else { return current.text }
        return try await client.sendJSON("PUT", path, json: JSONValue.object(changes).jsonText).text
    }

    /// The staged fields whose value Intercom's contact does not have.
    static func fieldsToWrite(_ staged: JSONValue, over current: JSONValue) -> [String: JSONValue] {
        guard case .object(let fields) = staged else { return [:] }
        var changes: [String: JSONValue] = [:]
        for (key, value) in fields {
            switch key {
            case "email":
                if current[key]?.string?.lowercased() != value.string?.lowercased() { changes[key] = value }
            case "avatar":
                let url = current[key]?.string ?? current[key]?["image_url"]?.string
                if url != value.string { changes[key] = value }
            case "custom_attributes":
                guard case .object(let attributes) = value else { continue }
                let differing = attributes.filter { current[key]?[$0.key] != $0.value }
                if !differing.isEmpty { changes[key] = .object(differing) }
            default:
                if current[key] != value { changes[key] = value }
            }
        }
        return changes
    }
}
