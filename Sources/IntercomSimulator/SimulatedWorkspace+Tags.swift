import Foundation
import IntercomJSON

/// A tag of the workspace.
struct SimTag: Sendable {
    var id: String
    var name: String
}

/// Tags: the workspace's list (`GET /tags`; `POST /tags` creates or renames one, or tags and
/// untags contacts by name), one tag (`GET` and `DELETE /tags/{id}`), and a contact's tags
/// (`GET` and `POST /contacts/{id}/tags`, `DELETE /contacts/{id}/tags/{tag_id}`).
///
/// Tagging or untagging a contact changes it: its `updated_at` and revision move, so an
/// incremental pull reads it again. Deleting a tag takes it off every contact without that.
extension SimulatedWorkspace {
    /// How many tags a contact's body lists; `has_more` says when it has more.
    static let tagsInABody = 10

    func tagJSON(_ tag: SimTag) -> JSONValue {
        .object(["type": "tag", "id": .string(tag.id), "name": .string(tag.name)])
    }

    /// A tag as a tagging answers it: with when and by whom it was applied.
    func appliedTagJSON(_ tag: SimTag) -> JSONValue {
        .object([
            "type": "tag", "id": .string(tag.id), "name": .string(tag.name), "applied_at": .int(Int64(clock.now)),
            "applied_by": .object(["type": "admin", "id": .string(Self.admins[0].id)]),
        ])
    }

    func listTags() -> SimResponse {
        .json(.object(["type": "list", "data": .array(tagOrder.compactMap { tags[$0] }.map(tagJSON))]))
    }

    func findTag(_ call: SimCall) throws -> SimResponse {
        guard let tag = tags[call.parameter("id")] else { throw APIError(404, "not_found", "Resource Not Found") }
        return .json(tagJSON(tag))
    }

    /// `POST /tags`: `{"name"}` creates a tag (or finds it), `{"id", "name"}` renames one,
    /// `{"name", "users": [{"id"}, …]}` tags those contacts (`"untag": true` on one untags it),
    /// creating the tag when it is new.
    func createOrUpdateTag(_ call: SimCall) throws -> SimResponse {
        let body = try call.jsonBody()
        guard let name = body["name"]?.string?.trimmingCharacters(in: .whitespaces), !name.isEmpty else {
            throw APIError.invalid("invalid tag parameters")
        }
        if body["companies"] != nil { throw APIError(404, "company_not_found", "Company Not Found") }
        let id = body["id"]?.string ?? body["id"]?.int.map(String.init)
        if let id, body["users"] == nil {
            guard tags[id] != nil else { throw APIError(404, "not_found", "Resource Not Found") }
            if let other = tagID(named: name), other != id {
                throw APIError.invalid("A tag with the name \(name) already exists")
            }
            tags[id]?.name = name
            return .json(tagJSON(tags[id]!))
        }
        var users: [(id: String, untag: Bool)] = []
        if case .array(let items)? = body["users"] {
            for item in items {
                guard let userID = item["id"]?.string, live(userID) != nil else {
                    throw APIError(404, "not_found", "User Not Found")
                }
                users.append((userID, item["untag"]?.bool ?? false))
            }
        }
        let tag = tagNamed(name)
        for user in users {
            _ = user.untag ? untag(contact: user.id, tagID: tag.id) : apply(tagID: tag.id, to: user.id)
        }
        return .json(tagJSON(tag))
    }

    func deleteTag(_ call: SimCall) throws -> SimResponse {
        let id = call.parameter("id")
        guard let name = tags[id]?.name else { throw APIError(404, "not_found", "Resource Not Found") }
        // Their bodies change, so their ETags do; their `updated_at` does not.
        try deleteTag(named: name)
        return SimResponse(status: 200, body: "")
    }

    func contactTags(_ call: SimCall) throws -> SimResponse {
        guard let contact = live(call.parameter("id")) else { throw APIError.notFound() }
        return .json(.object(["type": "list", "data": .array(contact.tagIDs.compactMap { tags[$0] }.map(tagJSON))]))
    }

    /// `POST /contacts/{id}/tags` with `{"id": tag id}`.
    func tagContact(_ call: SimCall) throws -> SimResponse {
        let contactID = call.parameter("id")
        guard live(contactID) != nil else { throw APIError.notFound() }
        let body = try call.jsonBody()
        guard let tagID = body["id"]?.string ?? body["id"]?.int.map(String.init), let tag = tags[tagID] else {
            throw APIError(404, "not_found", "Resource Not Found")
        }
        _ = apply(tagID: tag.id, to: contactID)
        return .json(appliedTagJSON(tag))
    }

    func untagContact(_ call: SimCall) throws -> SimResponse {
        let contactID = call.parameter("id")
        guard live(contactID) != nil else { throw APIError.notFound() }
        guard let tag = tags[call.parameter("tag_id")] else { throw APIError(404, "not_found", "Resource Not Found") }
        _ = untag(contact: contactID, tagID: tag.id)
        return .json(appliedTagJSON(tag))
    }

    // MARK: The workspace's side

    func tagID(named name: String) -> String? {
        tagOrder.first { tags[$0]?.name.caseInsensitiveCompare(name) == .orderedSame }
    }

    /// The tag of that name, made when there is none.
    func tagNamed(_ name: String) -> SimTag {
        if let id = tagID(named: name), let tag = tags[id] { return tag }
        nextTagID += 1
        let tag = SimTag(id: String(nextTagID), name: name)
        tags[tag.id] = tag
        tagOrder.append(tag.id)
        return tag
    }

    /// Tags the contact; false when it already had the tag (tagging again changes nothing).
    func apply(tagID: String, to contactID: String) -> Bool {
        guard var contact = contacts[contactID], !contact.tagIDs.contains(tagID) else { return false }
        contact.tagIDs.append(tagID)
        taggedContacts[tagID, default: []].insert(contactID)
        relationsChanged(&contact)
        return true
    }

    func untag(contact contactID: String, tagID: String) -> Bool {
        guard var contact = contacts[contactID], contact.tagIDs.contains(tagID) else { return false }
        contact.tagIDs.removeAll { $0 == tagID }
        taggedContacts[tagID]?.remove(contactID)
        relationsChanged(&contact)
        return true
    }

    /// A contact's relations changed: it is updated now, as an edit is.
    func relationsChanged(_ contact: inout SimContact) {
        contact.updatedAt = max(clock.now, contact.updatedAt)
        contact.revision += 1
        contacts[contact.id] = contact
        searchRevision &+= 1
        changedForSearch(contact.id)
    }

    // MARK: In-process control (also `POST /_sim/contacts/{id}/tags`)

    /// Tags a contact by the tag's name, making the tag when it is new. Returns the tag's id.
    @discardableResult
    public func tag(contact id: String, name: String) throws -> String {
        guard contacts[id] != nil else { throw SimulatorError("no contact \(id)") }
        let tag = tagNamed(name)
        _ = apply(tagID: tag.id, to: id)
        return tag.id
    }

    /// Takes the tag of that name off a contact.
    public func untag(contact id: String, name: String) throws {
        guard contacts[id] != nil else { throw SimulatorError("no contact \(id)") }
        guard let tagID = tagID(named: name) else { throw SimulatorError("no tag named \(name)") }
        _ = untag(contact: id, tagID: tagID)
    }

    /// The workspace's tags, as (id, name), in creation order.
    public func tagList() -> [(id: String, name: String)] {
        tagOrder.compactMap { tags[$0] }.map { ($0.id, $0.name) }
    }

    /// Each live contact's tag ids and company ids, for tests that compare a mirror's links.
    public func relationsByContact() -> [String: (tags: Set<String>, companies: Set<String>)] {
        var relations: [String: (tags: Set<String>, companies: Set<String>)] = [:]
        for (id, contact) in contacts where !isArchived(id) {
            relations[id] = (Set(contact.tagIDs), Set(contact.companyIDs))
        }
        return relations
    }

    /// Deletes a tag by name, as `DELETE /tags/{id}` does.
    public func deleteTag(named name: String) throws {
        guard let id = tagID(named: name) else { throw SimulatorError("no tag named \(name)") }
        tags.removeValue(forKey: id)
        tagOrder.removeAll { $0 == id }
        for contactID in taggedContacts.removeValue(forKey: id) ?? [] {
            contacts[contactID]?.tagIDs.removeAll { $0 == id }
            contacts[contactID]?.revision += 1
        }
        searchRevision &+= 1
    }
}
