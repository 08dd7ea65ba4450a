import IntercomJSON

/// A note an admin wrote about a contact.
struct SimNote: Sendable {
    var id: String
    var contactID: String
    var authorID: String
    var body: String
    var createdAt: Int
}

/// `POST` and `GET /contacts/{id}/notes`: notes on a contact, written by an admin (the token's
/// own, unless the request names another), listed newest first. A body lists the newest
/// `notesInABody` as references, as it lists tags.
extension SimulatedWorkspace {
    static let notesInABody = 10

    func createNote(_ call: SimCall) throws -> SimResponse {
        let contactID = call.parameter("id")
        guard var contact = live(contactID) else { throw APIError.notFound() }
        let body = try call.jsonBody()
        guard let text = body["body"]?.string, !text.isEmpty else {
            throw APIError.invalid("body is required and must be a string", field: "body")
        }
        var authorID = Self.admins[0].id
        if let given = body["admin_id"], given != .null {
            guard let id = given.string ?? given.int.map(String.init), Self.admins.contains(where: { $0.id == id }) else {
                throw APIError(404, "admin_not_found", "Admin not found")
            }
            authorID = id
        }
        let note = SimNote(
            id: String(nextNoteID), contactID: contactID, authorID: authorID, body: text, createdAt: clock.now)
        nextNoteID += 1
        notes[note.id] = note
        contact.noteIDs.append(note.id)
        contact.revision += 1
        contacts[contactID] = contact
        return .json(noteJSON(note))
    }

    func contactNotes(_ call: SimCall) throws -> SimResponse {
        guard let contact = live(call.parameter("id")) else { throw APIError.notFound() }
        let listed = contact.noteIDs.reversed().compactMap { notes[$0] }.map(noteJSON)
        return .json(
            .object([
                "type": "list", "data": .array(listed), "total_count": .int(Int64(listed.count)),
                "pages": .object([
                    "type": "pages", "next": .null, "page": 1, "per_page": .int(Int64(max(50, listed.count))),
                    "total_pages": 1,
                ]),
            ]))
    }

    func noteJSON(_ note: SimNote) -> JSONValue {
        let author = Self.admins.first { $0.id == note.authorID } ?? Self.admins[0]
        return .object([
            "type": "note", "id": .string(note.id), "created_at": .int(Int64(note.createdAt)),
            "contact": .object(["type": "contact", "id": .string(note.contactID)]),
            "author": .object(adminJSON(author)), "body": .string(note.body),
        ])
    }
}
