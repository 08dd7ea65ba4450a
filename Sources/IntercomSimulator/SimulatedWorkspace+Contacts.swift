import Foundation
import IntercomJSON

/// Contacts: their routes (`SimRoutes`), and creating, changing, merging, archiving and
/// removing them as Intercom does.
extension SimulatedWorkspace {

    func createContact(_ call: SimCall) throws -> SimResponse {
        contactResponse(try create(with: try call.jsonBody()), version: call.version)
    }

    func mergeContacts(_ call: SimCall) throws -> SimResponse {
        let body = try call.jsonBody()
        guard let from = body["from"]?.string, let into = body["into"]?.string else {
            throw APIError.invalid("from and into are required")
        }
        let survivor = try mergeContacts(from: from, into: into, validate: !(body["skip_duplicate_validation"]?.bool ?? false))
        return contactResponse(survivor, version: call.version)
    }

    func getContact(_ call: SimCall) throws -> SimResponse {
        try getContact(call.parameter("id"), request: call.request, version: call.version)
    }

    func updateContact(_ call: SimCall) throws -> SimResponse {
        contactResponse(
            try update(id: call.parameter("id"), with: try call.jsonBody(), version: call.version), version: call.version)
    }

    func deleteContact(_ call: SimCall) throws -> SimResponse {
        let id = call.parameter("id")
        guard let contact = live(id) else { throw APIError.notFound() }
        remove(id)
        deleted.insert(id)
        return .json(
            .object(["type": "contact", "id": .string(id), "external_id": .optional(contact.externalID), "deleted": true]))
    }

    func archiveContact(_ call: SimCall, archive: Bool) throws -> SimResponse {
        let id = call.parameter("id")
        guard let contact = contacts[id] else { throw APIError.notFound("Contact Not Found") }
        if archive { archived.insert(id) } else { archived.remove(id) }
        searchRevision &+= 1
        return .json(
            .object([
                "type": "contact", "id": .string(id), "external_id": .optional(contact.externalID), "archived": .bool(archive),
            ]))
    }

    /// A contact's body for `version`, from the cache when it is current. Only `GET` keeps what
    /// it renders (`keeping`): a client revalidates the contacts it reads, where a walk reads
    /// each contact of a page once, and a million bodies kept would cost the pages' rendering
    /// their weight again in fresh memory.
    func render(_ contact: SimContact, version: APIVersion, keeping: Bool = false) -> String {
        guard version.isAtLeast2_16 else { return contact.json(version: version, avatarAsObject: configuration.avatarAsObject) }
        if let cached = renderCache[contact.id], cached.revision == contact.revision { return cached.json }
        let json = contact.json(version: version, avatarAsObject: configuration.avatarAsObject)
        if keeping { renderCache[contact.id] = (contact.revision, json) }
        return json
    }

    func contactResponse(_ contact: SimContact, version: APIVersion) -> SimResponse {
        var response = SimResponse.json(render(contact, version: version, keeping: true))
        if configuration.etags { response.headers.append(("ETag", contact.etag)) }
        return response
    }

    // MARK: Contacts

    /// A contact that GET, list and search can see: not archived, merged or deleted.
    func live(_ id: String) -> SimContact? {
        guard let contact = contacts[id], !isArchived(id) else { return nil }
        return contact
    }

    /// Whether `id` names a live contact, found without copying it.
    func isLive(_ id: String) -> Bool { contacts.index(forKey: id) != nil && !isArchived(id) }

    /// How many live contacts were created in `slice` of `order`, kept until search sees a
    /// change: a walk asks its range's total with every page, as an index would answer it.
    func liveCount(in slice: Range<Int>) -> Int {
        if liveCountsRevision != searchRevision || liveCounts.count >= 4_096 {
            liveCounts = [:]
            liveCountsRevision = searchRevision
        }
        if let kept = liveCounts[slice] { return kept }
        var count = 0
        for id in order[slice] where isLive(id) { count += 1 }
        liveCounts[slice] = count
        return count
    }

    func isArchived(_ id: String) -> Bool { !archived.isEmpty && archived.contains(id) }

    func insert(_ contact: SimContact) {
        contacts[contact.id] = contact
        searchRevision &+= 1
        if let last = orderCreated.last, contact.createdAt < last { createdInOrder = false }
        order.append(contact.id)
        orderSequences.append(contact.sequence)
        orderCreated.append(contact.createdAt)
        changedForSearch(contact.id)
        if let email = contact.email { byEmail[email.lowercased()] = contact.id }
        if let externalID = contact.externalID { byExternalID[externalID] = contact.id }
        nextSequence = max(nextSequence, contact.sequence + 1)
    }

    func remove(_ id: String) {
        guard let contact = contacts.removeValue(forKey: id) else { return }
        searchRevision &+= 1
        renderCache[id] = nil
        for tagID in contact.tagIDs { taggedContacts[tagID]?.remove(id) }
        for companyID in contact.companyIDs { companyContacts[companyID]?.remove(id) }
        searchVisible[id] = nil
        archived.remove(id)
        if let email = contact.email, byEmail[email.lowercased()] == id { byEmail[email.lowercased()] = nil }
        if let externalID = contact.externalID, byExternalID[externalID] == id { byExternalID[externalID] = nil }
    }

    func getContact(_ id: String, request: SimRequest, version: APIVersion) throws -> SimResponse {
        if let contact = live(id) {
            if configuration.etags, let tag = request.headers["if-none-match"],
                tag.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == contact.etag })
            {
                return SimResponse(status: 304, headers: [("ETag", contact.etag)], body: "")
            }
            return contactResponse(contact, version: version)
        }
        if merged[id] != nil {
            guard version.isAtLeast2_16 else { throw APIError.notFound() }
            var target = id
            for _ in 0..<3 {
                guard let next = merged[target] else { break }
                target = next
            }
            var error = APIError(410, "contact_merged", "Contact has been merged into another contact")
            error.headers = [("Link", "</contacts/\(target)>; rel=\"canonical\"")]
            throw error
        }
        throw APIError.notFound()
    }

    static let writableStrings = ["external_id", "email", "phone", "name", "avatar"]

    /// Checks and applies `POST`/`PUT` fields; `existing` is nil for a create.
    func apply(_ body: JSONValue, to contact: inout SimContact, creating: Bool) throws {
        guard case .object(let fields) = body else { throw APIError.invalid("The body must be a JSON object") }
        for key in Self.writableStrings {
            guard let value = fields[key] else { continue }
            guard value.string != nil || value == .null else {
                throw APIError.invalid("\(key) must be a string", field: key)
            }
        }
        if let role = fields["role"] {
            guard let text = role.string, text == "user" || text == "lead" else {
                throw APIError.invalid("role must be user or lead", field: "role")
            }
            // A lead can become a user (it signs up); a user never goes back to being a lead.
            if !creating, contact.role == "user", text == "lead" {
                throw APIError.invalid("Contact with user role can't be converted to a lead", field: "role")
            }
            contact.role = text
        }
        if let email = fields["email"]?.string {
            guard Self.isPlausibleEmail(email) else {
                throw APIError.invalid("The email \(email) is not a valid email address", field: "email")
            }
        }
        if fields["email_verified"] != nil, fields["email"] == nil {
            throw APIError.invalid("email_verified can only be sent together with email", field: "email_verified")
        }
        if let owner = fields["owner_id"], owner != .null {
            let ownerID = owner.string ?? owner.int.map(String.init)
            guard let ownerID, Self.admins.contains(where: { $0.id == ownerID }) else {
                throw APIError.invalid("The owner specified is not a member of the workspace", field: "owner_id")
            }
            contact.ownerID = ownerID
        }
        if let attributes = fields["custom_attributes"] {
            guard case .object(let values) = attributes else {
                throw APIError.invalid("custom_attributes must be an object", field: "custom_attributes")
            }
            contact.customAttributes.merge(values) { _, new in new }
        }
        for key in ["signed_up_at", "last_seen_at"] {
            guard let value = fields[key], value != .null else { continue }
            guard let time = value.int else { throw APIError.invalid("\(key) must be a Unix timestamp", field: key) }
            if key == "signed_up_at" { contact.signedUpAt = time } else { contact.lastSeenAt = time }
        }
        if let flag = fields["unsubscribed_from_emails"] {
            guard let value = flag.bool else {
                throw APIError.invalid("unsubscribed_from_emails must be a boolean", field: "unsubscribed_from_emails")
            }
            contact.unsubscribedFromEmails = value
        }
        let newEmail = fields["email"].map { $0.string }
        let newExternalID = fields["external_id"].map { $0.string }
        try checkDuplicates(email: newEmail ?? nil, externalID: newExternalID ?? nil, except: creating ? nil : contact.id)
        if let newEmail { contact.email = newEmail }
        if let newExternalID { contact.externalID = newExternalID }
        if let phone = fields["phone"] { contact.phone = phone.string }
        if let name = fields["name"] { contact.name = name.string }
        if let avatar = fields["avatar"] { contact.avatar = avatar.string }
    }

    static func isPlausibleEmail(_ email: String) -> Bool {
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".") && !parts[1].hasPrefix(".")
            && !parts[1].hasSuffix(".") && !email.contains(where: \.isWhitespace)
    }

    func checkDuplicates(email: String?, externalID: String?, except: String?) throws {
        let matches = [email.flatMap { byEmail[$0.lowercased()] }, externalID.flatMap { byExternalID[$0] }]
        for case let id? in matches where id != except {
            let wording = archived.contains(id) ? "An archived contact" : "A contact"
            throw APIError(409, "conflict", "\(wording) matching those details already exists with id=\(id)")
        }
    }

    func create(with body: JSONValue) throws -> SimContact {
        guard body["email"] != nil || body["external_id"] != nil || body["role"] != nil else {
            throw APIError.invalid("Provide at least one of email, external_id or role")
        }
        let now = clock.now
        var contact = SimContact(
            id: newContactID(), workspaceID: configuration.workspaceID, role: "user", createdAt: now, sequence: nextSequence)
        try apply(body, to: &contact, creating: true)
        if contact.email == nil && contact.externalID == nil && body["role"] == nil {
            throw APIError.invalid("Provide at least one of email, external_id or role")
        }
        insert(contact)
        return contact
    }

    func newContactID() -> String {
        let stamp = String(UInt32(truncatingIfNeeded: clock.now), radix: 16)
        let serial = String(nextSequence, radix: 16)
        let padding = String(repeating: "0", count: max(0, 16 - serial.count))
        return String((String(repeating: "0", count: max(0, 8 - stamp.count)) + stamp + "f" + padding + serial).suffix(24))
    }

    func update(id: String, with body: JSONValue, version: APIVersion) throws -> SimContact {
        guard var contact = live(id) else { throw APIError.notFound() }
        let before = (contact.email, contact.externalID)
        try apply(body, to: &contact, creating: false)
        if let email = before.0, byEmail[email.lowercased()] == id { byEmail[email.lowercased()] = nil }
        if let externalID = before.1, byExternalID[externalID] == id { byExternalID[externalID] = nil }
        if let email = contact.email { byEmail[email.lowercased()] = id }
        if let externalID = contact.externalID { byExternalID[externalID] = id }
        contact.updatedAt = max(clock.now, contact.updatedAt)
        contact.revision += 1
        contacts[id] = contact
        searchRevision &+= 1
        changedForSearch(id)
        return contact
    }

    /// A contact changed: search sees it so after the lag.
    func changedForSearch(_ id: String) {
        guard configuration.searchLagSeconds > 0 else { return }
        searchPending.append((clock.now + configuration.searchLagSeconds, id))
    }

    /// The version of a live contact that search sees now: the current one without a lag, else
    /// the one indexed once its lag passed (none yet for a contact created within the lag).
    func searchable(_ id: String) -> SimContact? {
        guard configuration.searchLagSeconds > 0 else { return live(id) }
        return live(id) != nil ? searchVisible[id] : nil
    }

    /// Moves the changes whose lag has passed into what search sees.
    func catchUpSearch() {
        guard configuration.searchLagSeconds > 0 else { return }
        let now = clock.now
        while searchPendingHead < searchPending.count, searchPending[searchPendingHead].at <= now {
            let id = searchPending[searchPendingHead].id
            searchVisible[id] = contacts[id]
            searchRevision &+= 1
            searchPendingHead += 1
        }
        if searchPendingHead > 1_024, searchPendingHead * 2 > searchPending.count {
            searchPending.removeFirst(searchPendingHead)
            searchPendingHead = 0
        }
    }

    func mergeContacts(from: String, into: String, validate: Bool) throws -> SimContact {
        guard let source = live(from), var target = live(into) else { throw APIError.notFound() }
        guard source.role == "lead", target.role == "user" else {
            throw APIError(400, "invalid_merge", "Only a lead can be merged, and only into a user")
        }
        if validate {
            let sameEmail = source.email != nil && source.email?.lowercased() == target.email?.lowercased()
            let samePhone = source.phone != nil && source.phone == target.phone
            guard sameEmail || samePhone else {
                throw APIError(
                    400, "invalid_merge",
                    "The contacts are not duplicates (matching email or phone); pass skip_duplicate_validation to merge anyway")
            }
        }
        remove(from)
        merged[from] = into
        target.updatedAt = max(clock.now, target.updatedAt)
        target.revision += 1
        contacts[into] = target
        searchRevision &+= 1
        changedForSearch(into)
        return target
    }
}
