import Foundation

/// An Intercom contact: the fields the engine works with, decoded from Intercom's JSON.
///
/// Intercom's bodies vary, and decoding takes both shapes: `avatar` may be an object `{image_url}` or a plain URL string,
/// `owner_id` may be a string (2.16) or an integer (≤ 2.15), unknown keys are ignored and
/// every field Intercom does not always send is optional.
public struct Contact: Sendable, Hashable, Identifiable {
    public var id: String
    public var workspaceID: String?
    public var externalID: String?
    public var role: ContactRole
    public var email: String?
    public var phone: String?
    public var name: String?
    public var avatarURL: String?
    public var ownerID: String?
    public var customAttributes: [String: JSONValue]
    public var createdAt: Int
    public var updatedAt: Int
    public var signedUpAt: Int?
    public var lastSeenAt: Int?
    public var unsubscribedFromEmails: Bool

    public init(
        id: String, workspaceID: String? = nil, externalID: String? = nil, role: ContactRole,
        email: String? = nil, phone: String? = nil, name: String? = nil, avatarURL: String? = nil,
        ownerID: String? = nil, customAttributes: [String: JSONValue] = [:], createdAt: Int, updatedAt: Int,
        signedUpAt: Int? = nil, lastSeenAt: Int? = nil, unsubscribedFromEmails: Bool = false
    ) {
        self.id = id
        self.workspaceID = workspaceID
        self.externalID = externalID
        self.role = role
        self.email = email
        self.phone = phone
        self.name = name
        self.avatarURL = avatarURL
        self.ownerID = ownerID
        self.customAttributes = customAttributes
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.signedUpAt = signedUpAt
        self.lastSeenAt = lastSeenAt
        self.unsubscribedFromEmails = unsubscribedFromEmails
    }
}

extension Contact: Decodable {
    enum CodingKeys: String, CodingKey {
        case type, id, role, email, phone, name, avatar
        case workspaceID = "workspace_id"
        case externalID = "external_id"
        case ownerID = "owner_id"
        case customAttributes = "custom_attributes"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case signedUpAt = "signed_up_at"
        case lastSeenAt = "last_seen_at"
        case unsubscribedFromEmails = "unsubscribed_from_emails"
    }

    private enum AvatarKeys: String, CodingKey {
        case imageURL = "image_url"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let type = try container.decodeIfPresent(String.self, forKey: .type), type != "contact" {
            throw DecodingError.dataCorruptedError(
                forKey: .type, in: container, debugDescription: "expected type \"contact\", found \"\(type)\"")
        }
        id = try container.decode(String.self, forKey: .id)
        workspaceID = try container.decodeIfPresent(String.self, forKey: .workspaceID)
        externalID = try container.decodeLenientString(forKey: .externalID)
        role = try container.decode(ContactRole.self, forKey: .role)
        email = try container.decodeIfPresent(String.self, forKey: .email)
        phone = try container.decodeIfPresent(String.self, forKey: .phone)
        name = try container.decodeIfPresent(String.self, forKey: .name)
        if let url = try? container.decodeIfPresent(String.self, forKey: .avatar) {
            avatarURL = url
        } else if let avatar = try? container.nestedContainer(keyedBy: AvatarKeys.self, forKey: .avatar) {
            avatarURL = try avatar.decodeIfPresent(String.self, forKey: .imageURL)
        } else {
            avatarURL = nil
        }
        ownerID = try container.decodeLenientString(forKey: .ownerID)
        customAttributes = try container.decodeIfPresent([String: JSONValue].self, forKey: .customAttributes) ?? [:]
        createdAt = try container.decode(Int.self, forKey: .createdAt)
        updatedAt = try container.decode(Int.self, forKey: .updatedAt)
        signedUpAt = try container.decodeIfPresent(Int.self, forKey: .signedUpAt)
        lastSeenAt = try container.decodeIfPresent(Int.self, forKey: .lastSeenAt)
        unsubscribedFromEmails = try container.decodeIfPresent(Bool.self, forKey: .unsubscribedFromEmails) ?? false
    }
}

extension KeyedDecodingContainer {
    /// A string that older API versions send as a number (`owner_id` ≤ 2.15, some `external_id`s).
    fileprivate func decodeLenientString(forKey key: Key) throws -> String? {
        guard contains(key), try !decodeNil(forKey: key) else {
            return nil
        }
        if let text = try? decode(String.self, forKey: key) {
            return text
        }
        if let number = try? decode(Int64.self, forKey: key) {
            return String(number)
        }
        throw DecodingError.typeMismatch(
            String.self, .init(codingPath: codingPath + [key], debugDescription: "expected a string or an integer"))
    }
}
