import Foundation

/// A contact to create, with the fields Intercom's create-contact action takes (API.md §4.1).
/// `problems` checks it before anything is written; the CSV import uses the same rules.
public struct ContactDraft: Sendable, Equatable {
    public var role: ContactRole
    public var email: String
    public var name: String?
    /// International format: `+` then the country code and number.
    public var phone: String?
    /// An http(s) image URL.
    public var avatar: String?
    public var externalID: String?
    /// Scalar values only (string, number, boolean or null), as Intercom stores them.
    public var customAttributes: [String: JSONValue]

    public init(
        role: ContactRole = .user, email: String, name: String? = nil, phone: String? = nil, avatar: String? = nil,
        externalID: String? = nil, customAttributes: [String: JSONValue] = [:]
    ) {
        self.role = role
        self.email = email
        self.name = name
        self.phone = phone
        self.avatar = avatar
        self.externalID = externalID
        self.customAttributes = customAttributes
    }

    /// Everything wrong with the draft, one entry per field; empty when it can be staged.
    public var problems: [FieldProblem] {
        var problems: [FieldProblem] = []
        if let reason = Self.emailProblem(email) { problems.append(FieldProblem("email", reason)) }
        if let name, let reason = Self.textProblem(name, limit: 255) { problems.append(FieldProblem("name", reason)) }
        if let phone, let reason = Self.phoneProblem(phone) { problems.append(FieldProblem("phone", reason)) }
        if let avatar, let reason = Self.avatarProblem(avatar) { problems.append(FieldProblem("avatar", reason)) }
        if let externalID, let reason = Self.textProblem(externalID, limit: 255) {
            problems.append(FieldProblem("external_id", reason))
        }
        for (key, value) in customAttributes.sorted(by: { $0.key < $1.key }) {
            if let reason = Self.attributeProblem(key: key, value: value) {
                problems.append(FieldProblem("custom_attributes.\(key)", reason))
            }
        }
        return problems
    }

    /// Throws `DraftError` naming every invalid field.
    public func validate() throws {
        let problems = problems
        if !problems.isEmpty { throw DraftError(problems: problems) }
    }

    /// The body of `POST /contacts`: only the fields that were given.
    var requestBody: JSONValue {
        var fields: [String: JSONValue] = ["role": .string(role.rawValue), "email": .string(email)]
        if let name { fields["name"] = .string(name) }
        if let phone { fields["phone"] = .string(phone) }
        if let avatar { fields["avatar"] = .string(avatar) }
        if let externalID { fields["external_id"] = .string(externalID) }
        if !customAttributes.isEmpty { fields["custom_attributes"] = .object(customAttributes) }
        return .object(fields)
    }

    // MARK: Rules

    /// A pragmatic address check: one `@`, a local part of printable characters, and a domain of
    /// dot-separated labels (letters, digits, hyphens) ending in a label of two letters or more.
    static func emailProblem(_ email: String) -> String? {
        if email.isEmpty { return "is required" }
        if email.utf8.count > 254 && email.count > 254 { return "is longer than 254 characters" }
        if email.contains(where: { $0.isWhitespace }) { return "\"\(email)\" contains a space" }
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            return parts.count == 1 ? "\"\(email)\" has no @" : "\"\(email)\" has more than one @"
        }
        let local = parts[0]
        let domain = parts[1]
        if local.isEmpty { return "\"\(email)\" has nothing before the @" }
        if local.hasPrefix(".") || local.hasSuffix(".") || local.contains("..") {
            return "\"\(email)\" has a misplaced dot before the @"
        }
        if local.utf8.contains(where: { !Self.allowedInLocalPart[Int($0)] }) {
            return "\"\(email)\" has a character not allowed before the @"
        }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2, labels.allSatisfy({ !$0.isEmpty }) else {
            return "\"\(email)\" needs a domain like example.com after the @"
        }
        for label in labels {
            if label.hasPrefix("-") || label.hasSuffix("-")
                || label.contains(where: { !($0.isLetter || $0.isNumber || $0 == "-") })
            {
                return "\"\(email)\" has an invalid domain \"\(domain)\""
            }
        }
        if let top = labels.last, top.count < 2 || top.allSatisfy(\.isNumber) {
            return "\"\(email)\" has an invalid domain \"\(domain)\""
        }
        return nil
    }

    /// ASCII letters, digits and `!#$%&'*+-/=?^_`{|}~.`, by byte (non-ASCII bytes are not allowed).
    private static let allowedInLocalPart: [Bool] = (0..<256).map { byte in
        guard let scalar = Unicode.Scalar(UInt32(byte)), byte < 0x80 else { return false }
        return ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
            || "!#$%&'*+-/=?^_`{|}~.".unicodeScalars.contains(scalar)
    }

    /// `+`, then 7 to 15 digits (E.164), which may be grouped by spaces, dots, dashes or
    /// parentheses.
    static func phoneProblem(_ phone: String) -> String? {
        guard phone.hasPrefix("+") else {
            return "\"\(phone)\" must start with + and the country code (like +44 20 7946 0958)"
        }
        let rest = phone.dropFirst()
        if rest.contains(where: { !($0.isASCII && $0.isNumber) && !" .-()".contains($0) }) {
            return "\"\(phone)\" may hold only digits after the +, grouped by spaces, dots, dashes or parentheses"
        }
        let digits = rest.filter(\.isNumber).count
        if !(7...15).contains(digits) { return "\"\(phone)\" has \(digits) digits; a phone number has 7 to 15" }
        return nil
    }

    static func avatarProblem(_ avatar: String) -> String? {
        guard let url = URL(string: avatar), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty
        else {
            return "\"\(avatar)\" is not an http(s) URL"
        }
        return nil
    }

    static func textProblem(_ text: String, limit: Int) -> String? {
        if text.trimmingCharacters(in: .whitespaces).isEmpty { return "is empty; leave it out instead" }
        // A text of no more bytes than the limit has no more characters either.
        if text.utf8.count > limit && text.count > limit { return "is longer than \(limit) characters" }
        if text.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) {
            return "contains a control character"
        }
        return nil
    }

    static func attributeProblem(key: String, value: JSONValue) -> String? {
        if key.trimmingCharacters(in: .whitespaces).isEmpty { return "has an empty name" }
        if key.contains(".") || key.contains("$") { return "the name may not contain . or $" }
        switch value {
        case .array, .object: return "must be a string, number, boolean or null"
        case .string(let text) where text.count > 255: return "is longer than 255 characters"
        default: return nil
        }
    }
}

/// One invalid field and why.
public struct FieldProblem: Sendable, Equatable, CustomStringConvertible {
    public var field: String
    public var reason: String

    public init(_ field: String, _ reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { "\(field): \(reason)" }
}

/// A draft refused before anything was written.
public struct DraftError: Error, Sendable, Equatable, CustomStringConvertible {
    public var problems: [FieldProblem]

    public var description: String {
        "invalid input, nothing was staged: " + problems.map(\.description).joined(separator: "; ")
    }
}
