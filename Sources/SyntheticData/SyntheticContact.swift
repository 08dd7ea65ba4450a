/// One generated contact, with everything needed to render it as Intercom JSON or as a CSV row.
public struct SyntheticContact: Sendable, Equatable {
    public enum Role: String, Sendable {
        case user, lead
    }

    public enum AttributeValue: Sendable, Equatable {
        case string(String)
        case int(Int)
        case bool(Bool)
    }

    public var index: Int
    public var id: String
    public var externalID: String?
    public var role: Role
    public var email: String
    public var phone: String?
    public var name: String
    public var avatarURL: String?
    public var ownerID: String?
    public var customAttributes: [(String, AttributeValue)]
    public var createdAt: Int
    public var updatedAt: Int
    public var signedUpAt: Int?
    public var lastSeenAt: Int?
    public var city: String
    public var workspaceID: String
    /// The ids of the tags and companies it carries (none unless set): its body lists the first
    /// 10 of each, with `total_count` and `has_more`, as Intercom's do.
    public var tagIDs: [String] = []
    public var companyIDs: [String] = []

    public static func == (lhs: SyntheticContact, rhs: SyntheticContact) -> Bool {
        lhs.intercomJSON() == rhs.intercomJSON()
    }

    /// The contact as Intercom 2.16 sends it from `GET /contacts/{id}` and in list pages.
    public func intercomJSON() -> String {
        var json = JSONWriter()
        json.beginObject()
        json.field("type", "contact")
        json.field("id", id)
        json.field("workspace_id", workspaceID)
        json.field("external_id", externalID)
        json.field("role", role.rawValue)
        json.field("email", email)
        json.field("phone", phone)
        json.field("name", name)
        json.key("avatar")
        if let avatarURL {
            json.beginObject()
            json.field("type", "avatar")
            json.field("image_url", avatarURL)
            json.endObject()
        } else {
            json.null()
        }
        json.field("owner_id", ownerID)
        json.key("social_profiles")
        json.raw(#"{"type":"list","data":[]}"#)
        json.field("has_hard_bounced", false)
        json.field("marked_email_as_spam", false)
        json.field("unsubscribed_from_emails", index % 17 == 0)
        json.field("created_at", createdAt)
        json.field("updated_at", updatedAt)
        json.field("signed_up_at", signedUpAt)
        json.field("last_seen_at", lastSeenAt)
        json.field("last_replied_at", Int?.none)
        json.field("last_contacted_at", Int?.none)
        json.field("last_email_opened_at", Int?.none)
        json.field("last_email_clicked_at", Int?.none)
        json.field("language_override", String?.none)
        json.field("browser", "chrome")
        json.field("browser_version", "131.0.0.0")
        json.field("browser_language", "en")
        json.field("os", "Linux")
        json.key("location")
        json.beginObject()
        json.field("type", "location")
        json.field("country", String?.none)
        json.field("region", String?.none)
        json.field("city", city)
        json.endObject()
        json.key("custom_attributes")
        json.beginObject()
        for (name, value) in customAttributes {
            switch value {
            case .string(let text): json.field(name, text)
            case .int(let number): json.field(name, number)
            case .bool(let flag): json.field(name, flag)
            }
        }
        json.endObject()
        for (list, type, ids) in [("tags", "tag", tagIDs), ("notes", "note", []), ("companies", "company", companyIDs)] {
            json.key(list)
            json.beginObject()
            json.field("type", "list")
            json.key("data")
            json.raw(
                "["
                    + ids.prefix(10).map { #"{"type":"\#(type)","id":"\#($0)","url":"/\#(list)/\#($0)"}"# }
                    .joined(separator: ",") + "]")
            json.field("url", "/contacts/\(id)/\(list)")
            json.field("total_count", ids.count)
            json.field("has_more", ids.count > 10)
            json.endObject()
        }
        json.endObject()
        return json.text
    }

    public static let csvHeader = ["Email", "Full name", "Phone number", "Type", "User ID", "Avatar", "Company", "Plan", "Notes"]

    /// The contact as a row of a CRM export, in the order of `csvHeader`, quoted per RFC 4180.
    public func csvRow() -> String {
        let fields = [
            email, name, phone ?? "", role.rawValue, externalID ?? "", avatarURL ?? "",
            attribute("company"), attribute("plan"), attribute("notes"),
        ]
        return fields.map(Self.csvField).joined(separator: ",")
    }

    private func attribute(_ name: String) -> String {
        guard let value = customAttributes.first(where: { $0.0 == name })?.1 else { return "" }
        switch value {
        case .string(let text): return text
        case .int(let number): return String(number)
        case .bool(let flag): return String(flag)
        }
    }

    static func csvField(_ value: String) -> String {
        let needsQuotes = value.utf8.contains { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 10 || $0 == 13 }
        guard needsQuotes else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

extension String {
    // Foundation-free replacement so this target needs nothing beyond the standard library.
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
