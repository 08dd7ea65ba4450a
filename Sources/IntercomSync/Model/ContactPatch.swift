import Foundation

/// A field of a contact that an offline edit can change.
public enum ContactField: Hashable, Sendable, CustomStringConvertible {
    case name, email, phone, role, avatar, externalID, ownerID, unsubscribedFromEmails
    /// One key of `custom_attributes`; the contact's other keys are left alone.
    case customAttribute(String)

    /// The fields that are not custom attributes, in the order they are shown.
    public static let standard: [ContactField] = [
        .name, .email, .phone, .role, .avatar, .externalID, .ownerID, .unsubscribedFromEmails,
    ]

    /// The field as Intercom names it in a contact's JSON: `name`, `external_id`,
    /// `custom_attributes.plan`.
    public var description: String {
        switch self {
        case .name: "name"
        case .email: "email"
        case .phone: "phone"
        case .role: "role"
        case .avatar: "avatar"
        case .externalID: "external_id"
        case .ownerID: "owner_id"
        case .unsubscribedFromEmails: "unsubscribed_from_emails"
        case .customAttribute(let key): "custom_attributes.\(key)"
        }
    }

    /// The field named as `description` names it.
    public init?(name: String) {
        if name.hasPrefix("custom_attributes.") {
            let key = String(name.dropFirst("custom_attributes.".count))
            guard !key.isEmpty else { return nil }
            self = .customAttribute(key)
            return
        }
        guard let field = Self.standard.first(where: { $0.description == name }) else { return nil }
        self = field
    }

    /// Its member of a contact's JSON body: the field's key, or for a custom attribute the key
    /// within `custom_attributes`.
    var bodyKey: String {
        if case .customAttribute(let key) = self { return key }
        return description
    }
}

/// Changes to one contact's fields, staged offline with `IntercomMirror.stageEdit(_:to:)`: each
/// field given is set (`null` clears it, or removes a custom attribute), every other field is
/// left as it is, on the mirror and on Intercom.
///
///     var patch = ContactPatch()
///     patch[.phone] = "+44 20 7946 0958"
///     patch[.customAttribute("plan")] = "enterprise"
public struct ContactPatch: Sendable, Equatable {
    /// The new value of each field the patch changes.
    public private(set) var changes: [ContactField: JSONValue]

    public init(_ changes: [ContactField: JSONValue] = [:]) {
        self.changes = changes
    }

    /// The new value of `field`, or nil when the patch leaves it alone. Setting nil takes the
    /// field out of the patch; setting `.null` clears the field.
    public subscript(field: ContactField) -> JSONValue? {
        get { changes[field] }
        set { changes[field] = newValue }
    }

    /// Whether the patch changes nothing.
    public var isEmpty: Bool { changes.isEmpty }

    /// The fields it changes: the standard ones in their order, then custom attributes by key.
    public var fields: [ContactField] {
        ContactField.standard.filter { changes[$0] != nil }
            + changes.keys.compactMap { field -> String? in
                if case .customAttribute(let key) = field { key } else { nil }
            }.sorted().map(ContactField.customAttribute)
    }

    /// Everything wrong with the patch, one entry per field, by the rules of a create (an email
    /// Intercom would take, a phone in international format, an http(s) avatar, scalar custom
    /// attributes); empty when it can be staged.
    public var problems: [FieldProblem] {
        if changes.isEmpty { return [FieldProblem("patch", "changes no field: give at least one")] }
        var problems: [FieldProblem] = []
        for field in fields {
            let value = changes[field] ?? .null
            if let reason = Self.problem(of: value, for: field) {
                problems.append(FieldProblem(field.description, reason))
            }
        }
        return problems
    }

    /// Throws `DraftError` naming every invalid field.
    public func validate() throws {
        let problems = problems
        if !problems.isEmpty { throw DraftError(problems: problems) }
    }

    static func problem(of value: JSONValue, for field: ContactField) -> String? {
        switch field {
        case .email:
            guard let email = value.string else { return "must be an email address (a contact's email cannot be cleared)" }
            return ContactDraft.emailProblem(email)
        case .role:
            guard let role = value.string, ContactRole(rawValue: role) != nil else { return "must be user or lead" }
            return nil
        case .unsubscribedFromEmails:
            return value.bool == nil ? "must be true or false" : nil
        case .customAttribute(let key):
            if case .double(let number) = value, !number.isFinite {
                return "\(number) is not a number Intercom can store"
            }
            return ContactDraft.attributeProblem(key: key, value: value)
        case .name, .phone, .avatar, .externalID, .ownerID:
            if value == .null { return nil }
            guard let text = value.string else { return "must be text, or null to clear it" }
            switch field {
            case .phone: return ContactDraft.phoneProblem(text)
            case .avatar: return ContactDraft.avatarProblem(text)
            case .ownerID:
                return !text.isEmpty && text.allSatisfy(\.isASCIIDigit)
                    ? nil : "\"\(text)\" is not an admin id (a number, from `GET /admins`)"
            default: return ContactDraft.textProblem(text, limit: 255)
            }
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

/// A field of a contact edited offline whose edit has not reached Intercom yet.
public struct PendingEdit: Sendable, Equatable {
    public var field: ContactField
    /// The field's value when it was first edited; nil when the contact did not have it.
    public var base: JSONValue?
    /// The edited value, which the mirror shows.
    public var mine: JSONValue

    public init(field: ContactField, base: JSONValue?, mine: JSONValue) {
        self.field = field
        self.base = base
        self.mine = mine
    }
}
