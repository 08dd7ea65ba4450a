import IntercomJSON
import SyntheticData

/// A contact as the simulated workspace holds it.
struct SimContact: Sendable {
    var id: String
    var workspaceID: String
    var externalID: String?
    var role: String
    var email: String?
    var phone: String?
    var name: String?
    var avatar: String?
    var ownerID: String?
    var customAttributes: [String: JSONValue] = [:]
    var createdAt: Int
    var updatedAt: Int
    var signedUpAt: Int?
    var lastSeenAt: Int?
    var unsubscribedFromEmails = false
    var city: String?
    /// The tags it carries, in the order they were applied.
    var tagIDs: [String] = []
    /// The companies it belongs to, in the order it was attached.
    var companyIDs: [String] = []
    /// Its notes, oldest first.
    var noteIDs: [String] = []
    /// Creation order: the list endpoint's order and cursor.
    var sequence: Int
    /// Bumped on every change; the ETag is derived from it.
    var revision = 1

    init(id: String, workspaceID: String, role: String, createdAt: Int, sequence: Int) {
        self.id = id
        self.workspaceID = workspaceID
        self.role = role
        self.createdAt = createdAt
        self.updatedAt = createdAt
        self.sequence = sequence
    }

    init(_ synthetic: SyntheticContact, sequence: Int) {
        self.init(
            id: synthetic.id, workspaceID: synthetic.workspaceID, role: synthetic.role.rawValue,
            createdAt: synthetic.createdAt, sequence: sequence)
        externalID = synthetic.externalID
        email = synthetic.email
        phone = synthetic.phone
        name = synthetic.name
        avatar = synthetic.avatarURL
        ownerID = synthetic.ownerID
        updatedAt = synthetic.updatedAt
        signedUpAt = synthetic.signedUpAt
        lastSeenAt = synthetic.lastSeenAt
        unsubscribedFromEmails = synthetic.index % 17 == 0
        city = synthetic.city
        for (key, value) in synthetic.customAttributes {
            switch value {
            case .string(let text): customAttributes[key] = .string(text)
            case .int(let number): customAttributes[key] = .int(Int64(number))
            case .bool(let flag): customAttributes[key] = .bool(flag)
            }
        }
    }

    var etag: String { "W/\"\(id)-\(revision)\"" }

    /// The body's `companies`, as its `tags`.
    var companyList: String {
        let listed = companyIDs.prefix(SimulatedWorkspace.companiesInABody).map {
            #"{"type":"company","id":"\#($0)","url":"/companies/\#($0)"}"#
        }
        let more = companyIDs.count > SimulatedWorkspace.companiesInABody
        return
            #"{"type":"list","data":[\#(listed.joined(separator: ","))],"url":"/contacts/\#(id)/companies","total_count":\#(companyIDs.count),"has_more":\#(more)}"#
    }

    /// The body's `notes`, as its `tags`, newest first (as `GET /contacts/{id}/notes` lists them).
    var noteList: String {
        let listed = noteIDs.reversed().prefix(SimulatedWorkspace.notesInABody).map {
            #"{"type":"note","id":"\#($0)","url":"/notes/\#($0)"}"#
        }
        let more = noteIDs.count > SimulatedWorkspace.notesInABody
        return
            #"{"type":"list","data":[\#(listed.joined(separator: ","))],"url":"/contacts/\#(id)/notes","total_count":\#(noteIDs.count),"has_more":\#(more)}"#
    }

    /// The body's `tags`: the first `SimulatedWorkspace.tagsInABody` as references, the count of
    /// all, and whether there are more than it lists.
    var tagList: String {
        let listed = tagIDs.prefix(SimulatedWorkspace.tagsInABody).map { #"{"type":"tag","id":"\#($0)","url":"/tags/\#($0)"}"# }
        let more = tagIDs.count > SimulatedWorkspace.tagsInABody
        return
            #"{"type":"list","data":[\#(listed.joined(separator: ","))],"url":"/contacts/\#(id)/tags","total_count":\#(tagIDs.count),"has_more":\#(more)}"#
    }

    var emailDomain: String? {
        guard let email, let at = email.lastIndex(of: "@") else { return nil }
        return String(email[email.index(after: at)...])
    }

    /// The value of a searchable field, nil when it has none.
    func searchValue(_ field: String) -> JSONValue? {
        switch field {
        case "id": return .string(id)
        case "role": return .string(role)
        case "name": return name.map(JSONValue.string)
        case "avatar": return avatar.map(JSONValue.string)
        case "owner_id": return ownerID.map(JSONValue.string)
        case "email": return email.map(JSONValue.string)
        case "email_domain": return emailDomain.map(JSONValue.string)
        case "phone", "formatted_phone": return phone.map(JSONValue.string)
        case "external_id": return externalID.map(JSONValue.string)
        case "created_at": return .int(Int64(createdAt))
        case "updated_at": return .int(Int64(updatedAt))
        case "signed_up_at": return signedUpAt.map { .int(Int64($0)) }
        case "last_seen_at": return lastSeenAt.map { .int(Int64($0)) }
        case "unsubscribed_from_emails": return .bool(unsubscribedFromEmails)
        case "marked_email_as_spam", "has_hard_bounced": return .bool(false)
        case "browser": return "chrome"
        case "browser_language": return "en"
        case "os": return "Linux"
        case "location.city": return city.map(JSONValue.string)
        default:
            if field.hasPrefix("custom_attributes.") {
                return customAttributes[String(field.dropFirst("custom_attributes.".count))]
            }
            return nil
        }
    }

    /// The contact in Intercom's shape for `version`: 2.16 sends `owner_id` as a string, 2.15
    /// and older as an integer. `avatar` is a URL string, as Intercom's SDKs and older docs have
    /// it, or with `avatarAsObject` the `{type, image_url}` object of the 2.16 OpenAPI file
    /// (Intercom sends both shapes: clients must read both).
    func json(version: APIVersion, avatarAsObject: Bool = false) -> String {
        var text = "{"
        // About what a contact takes, so the text is not copied as it grows.
        text.reserveCapacity(1_536)
        func field(_ name: String, _ value: JSONValue) {
            // Names are this file's own: plain ASCII, nothing to escape.
            text += text.utf8.count > 1 ? ",\"" : "\""
            text += name
            text += "\":"
            value.write(into: &text)
        }
        func raw(_ name: String, _ json: String) {
            text += ",\"\(name)\":\(json)"
        }
        field("type", "contact")
        field("id", .string(id))
        field("workspace_id", .string(workspaceID))
        field("external_id", .optional(externalID))
        field("role", .string(role))
        field("email", .optional(email))
        field("email_domain", .optional(emailDomain))
        field("phone", .optional(phone))
        field("name", .optional(name))
        if avatarAsObject {
            field("avatar", avatar.map { .object(["type": "avatar", "image_url": .string($0)]) } ?? .null)
        } else {
            field("avatar", .optional(avatar))
        }
        if version.isAtLeast2_16 {
            field("owner_id", .optional(ownerID))
        } else {
            field("owner_id", ownerID.flatMap { Int($0) }.map { .int(Int64($0)) } ?? .optional(ownerID))
        }
        raw("social_profiles", #"{"type":"list","data":[]}"#)
        field("has_hard_bounced", false)
        field("marked_email_as_spam", false)
        field("unsubscribed_from_emails", .bool(unsubscribedFromEmails))
        field("created_at", .int(Int64(createdAt)))
        field("updated_at", .int(Int64(updatedAt)))
        field("signed_up_at", .optional(signedUpAt))
        field("last_seen_at", .optional(lastSeenAt))
        for name in ["last_replied_at", "last_contacted_at", "last_email_opened_at", "last_email_clicked_at"] {
            field(name, .null)
        }
        field("language_override", .null)
        field("browser", "chrome")
        field("browser_version", "131.0.0.0")
        field("browser_language", "en")
        field("os", "Linux")
        field(
            "location",
            .object(["type": "location", "country": .null, "region": .null, "city": .optional(city)]))
        field("custom_attributes", .object(customAttributes))
        raw("tags", tagList)
        raw("notes", noteList)
        raw("companies", companyList)
        field("enabled_push_messaging", .null)
        text += "}"
        return text
    }
}

/// The `Intercom-Version` of a request.
struct APIVersion: Sendable, Equatable {
    var raw: String

    static let known: Set<String> =
        Set(["1.0", "1.1", "1.2", "1.3", "1.4", "Preview", "Unstable"]).union((0...16).map { "2.\($0)" })

    var isPreview: Bool { raw == "Preview" || raw == "Unstable" }

    var isAtLeast2_16: Bool {
        if isPreview { return true }
        let parts = raw.split(separator: ".").compactMap { Int($0) }
        guard parts.count == 2 else { return false }
        return parts[0] > 2 || (parts[0] == 2 && parts[1] >= 16)
    }
}
