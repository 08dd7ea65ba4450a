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
                try await mirror.completeAdoptedCreate(
                    seq: entry.seq, localID: localID, contactJSON: adopted.contactJSON, disputed: adopted.disputed, now: now())
                run.update {
                    $0.contactsAdopted += 1
                    if !adopted.disputed.isEmpty { $0.conflicts += 1 }
                }
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
    /// fetches it, and writes the staged fields it lacks. A staged field it holds another value
    /// for is a colleague's, or the contact's own history: it is not overwritten but answered as
    /// disputed, for a conflict. A create whose first answer was lost finds its own contact
    /// here and writes nothing.
    private func adopt(_ id: String, archived: Bool, entry: OutboxEntry) async throws -> (
        contactJSON: String, disputed: [ContactMirror.FieldEdit]
    ) {
        let path = "/contacts/\(IntercomClient.pathComponent(id))"
        if archived {
            _ = try await client.sendJSON("POST", path + "/unarchive")
        }
        let current = try await client.sendJSON("GET", path)
        let staged = try JSONValue(jsonText: entry.payload)
        let (changes, disputed) = Self.fieldsToWrite(staged, over: try JSONValue(jsonText: current.text))
        guard !changes.isEmpty else { return (current.text, disputed) }
        return (try await client.sendJSON("PUT", path, json: JSONValue.object(changes).jsonText).text, disputed)
    }

    /// The staged fields Intercom's contact lacks (absent, null or empty), to write, and those
    /// it holds another value for, as edits with no base.
    static func fieldsToWrite(_ staged: JSONValue, over current: JSONValue) -> (
        changes: [String: JSONValue], disputed: [ContactMirror.FieldEdit]
    ) {
        guard case .object(let fields) = staged, case .object(let theirs) = current else { return ([:], []) }
        var changes: [String: JSONValue] = [:]
        var disputed: [ContactMirror.FieldEdit] = []
        func lacks(_ value: JSONValue?) -> Bool { value == nil || value == .null || value == .string("") }
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            if key == "custom_attributes" {
                guard case .object(let attributes) = value else { continue }
                var missing: [String: JSONValue] = [:]
                for (name, mine) in attributes.sorted(by: { $0.key < $1.key }) {
                    let field = ContactField.customAttribute(name)
                    let server = ContactMirror.serverValue(of: field, in: theirs)
                    if lacks(server) {
                        missing[name] = mine
                    } else if server != mine {
                        disputed.append(ContactMirror.FieldEdit(field: field, base: nil, mine: mine, server: server))
                    }
                }
                if !missing.isEmpty { changes[key] = .object(missing) }
                continue
            }
            guard let field = ContactField.standard.first(where: { $0.bodyKey == key }) else { continue }
            let server = ContactMirror.serverValue(of: field, in: theirs)
            let same =
                field == .email
                ? server?.string?.lowercased() == value.string?.lowercased() : server == value
            if same { continue }
            // A draft's role is `user` unless asked otherwise, so a role Intercom has is kept
            // rather than disputed.
            if lacks(server) {
                changes[key] = value
            } else if field != .role {
                disputed.append(ContactMirror.FieldEdit(field: field, base: nil, mine: value, server: server))
            }
        }
        return (changes, disputed)
    }
}
