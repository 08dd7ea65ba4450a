import Foundation

/// A contact to create, with the fields Intercom's create-contact action takes.
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

    /// The body of `POST /contacts` as JSON text: only the fields that were given, in a fixed
    /// order (written directly: a bulk import builds one a row).
    var requestBodyText: String {
        var text = #"{"role":"\#(role.rawValue)","email":"#
        JSONValue.appendQuoted(email, to: &text)
        for (key, value) in [("name", name), ("phone", phone), ("avatar", avatar), ("external_id", externalID)] {
            guard let value else { continue }
            text += #","\#(key)":"#
            JSONValue.appendQuoted(value, to: &text)
        }
        if !customAttributes.isEmpty {
            text += #","custom_attributes":"#
            JSONValue.object(customAttributes).write(into: &text)
        }
        return text + "}"
    }

    // MARK: Rules

    /// A pragmatic address check: one `@`, a local part of printable characters, and a domain of
    /// dot-separated labels (letters, digits, hyphens) ending in a label of two letters or more.
    static func emailProblem(_ email: String) -> String? {
        isPlainValidASCIIEmail(email) ? nil : emailProblemByRules(email)
    }

    static func emailProblemByRules(_ email: String) -> String? {
        if email.isEmpty { return "is required" }
        if email.utf8.count > 254 && email.count > 254 { return "is longer than 254 characters" }
        let asciiOnly = email.utf8.allSatisfy { $0 < 0x80 }
        if asciiOnly
            ? email.utf8.contains(where: { $0 == 0x20 || (0x09...0x0D).contains($0) })
            : email.contains(where: { $0.isWhitespace })
        {
            return "\"\(email)\" contains a space"
        }
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
        // Letters and digits of any script are allowed too (internationalised addresses,
        // RFC 6531), as Intercom stores them.
        if local.unicodeScalars.contains(where: {
            $0.isASCII
                ? !Self.allowedInLocalPart[Int($0.value)] : !($0.properties.isAlphabetic || $0.properties.numericType != nil)
        }) {
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

    /// The rules above on bytes, for the common all-ASCII address: true only when the address
    /// passes them all, so the slow path runs (and words the reason) only for doubtful ones.
    static func isPlainValidASCIIEmail(_ email: String) -> Bool {
        let bytes = email.utf8
        guard (6...254).contains(bytes.count), let at = bytes.firstIndex(of: UInt8(ascii: "@")) else { return false }
        let local = bytes[..<at]
        let domain = bytes[bytes.index(after: at)...]
        let dot = UInt8(ascii: ".")
        let dash = UInt8(ascii: "-")
        guard let first = local.first, first != dot, local.last != dot, local.allSatisfy({ allowedInLocalPart[Int($0)] })
        else { return false }
        var previous: UInt8 = 0
        for byte in local {
            if byte == dot && previous == dot { return false }
            previous = byte
        }
        var labelLength = 0
        var labelCount = 0
        var labelAllDigits = true
        var labelStart: UInt8 = 0
        previous = dot
        for byte in domain {
            if byte == dot {
                guard labelLength > 0, previous != dash else { return false }
                labelCount += 1
                labelLength = 0
                labelAllDigits = true
            } else {
                let isDigit = (0x30...0x39).contains(byte)
                let isLetter = (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                guard isDigit || isLetter || byte == dash else { return false }
                if labelLength == 0 { labelStart = byte }
                if labelStart == dash { return false }
                labelAllDigits = labelAllDigits && isDigit
                labelLength += 1
            }
            previous = byte
        }
        return labelCount >= 1 && labelLength >= 2 && !labelAllDigits && previous != dash
    }

    /// ASCII letters, digits and `!#$%&'*+-/=?^_`{|}~.`, by byte (non-ASCII bytes are not allowed).
    private static let allowedInLocalPart: [Bool] = (0..<256).map { byte in
        guard let scalar = Unicode.Scalar(UInt32(byte)), byte < 0x80 else { return false }
        return ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
            || "!#$%&'*+-/=?^_`{|}~.".unicodeScalars.contains(scalar)
    }

    /// `+`, then 7 to 15 digits (E.164), which may be grouped by spaces, dots, dashes or
    /// parentheses. The byte check answers for nearly every phone; the rules word the reason.
    static func phoneProblem(_ phone: String) -> String? {
        isPlainValidPhone(phone) ? nil : phoneProblemByRules(phone)
    }

    static func phoneProblemByRules(_ phone: String) -> String? {
        guard phone.hasPrefix("+") else {
            return "\"\(phone)\" must start with + and the country code (like +44 20 7946 0958)"
        }
        let rest = phone.dropFirst()
        if rest.contains(where: { !($0.isASCII && $0.isNumber) && !" .-()".contains($0) }) {
            return "\"\(phone)\" may hold only digits after the +, grouped by spaces, dots, dashes or parentheses"
        }
        let digits = rest.filter(\.isNumber).count
        if !(7...15).contains(digits) {
            return "\"\(phone)\" has \(digits) digit\(digits == 1 ? "" : "s"); a phone number has 7 to 15"
        }
        return nil
    }

    /// The rules of `phoneProblemByRules` on bytes: true exactly when a phone passes them.
    static func isPlainValidPhone(_ phone: String) -> Bool {
        let bytes = phone.utf8
        guard bytes.first == UInt8(ascii: "+") else { return false }
        var digits = 0
        for byte in bytes.dropFirst() {
            switch byte {
            case 0x30...0x39: digits += 1
            case UInt8(ascii: " "), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "("), UInt8(ascii: ")"): break
            default: return false
            }
        }
        return (7...15).contains(digits)
    }

    static func avatarProblem(_ avatar: String) -> String? {
        isPlainValidHTTPURL(avatar) ? nil : avatarProblemByURL(avatar)
    }

    static func avatarProblemByURL(_ avatar: String) -> String? {
        guard let url = URL(string: avatar), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty
        else {
            return "\"\(avatar)\" is not an http(s) URL"
        }
        return nil
    }

    /// True only for a URL Foundation reads as http(s) with a host: the scheme, then a host of
    /// letters, digits, dots and hyphens, then an optional port and path of unreserved
    /// characters and `/`. Anything else takes `URL(string:)`.
    static func isPlainValidHTTPURL(_ text: String) -> Bool {
        var bytes = text.utf8[...]
        if bytes.starts(with: "https://".utf8) {
            bytes = bytes.dropFirst(8)
        } else if bytes.starts(with: "http://".utf8) {
            bytes = bytes.dropFirst(7)
        } else {
            return false
        }
        func isAlphanumeric(_ byte: UInt8) -> Bool {
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
        }
        let hostEnd = bytes.firstIndex { !(isAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-")) }
        let host = bytes[..<(hostEnd ?? bytes.endIndex)]
        guard let first = host.first, isAlphanumeric(first), isAlphanumeric(host.last!) else { return false }
        var rest = bytes[(hostEnd ?? bytes.endIndex)...]
        if rest.first == UInt8(ascii: ":") {
            rest = rest.dropFirst()
            let portEnd = rest.firstIndex { !(0x30...0x39).contains($0) } ?? rest.endIndex
            guard (1...5).contains(rest.distance(from: rest.startIndex, to: portEnd)) else { return false }
            rest = rest[portEnd...]
        }
        guard rest.isEmpty || rest.first == UInt8(ascii: "/") else { return false }
        return rest.allSatisfy { byte in
            isAlphanumeric(byte) || byte == UInt8(ascii: "/") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "~")
        }
    }

    static func textProblem(_ text: String, limit: Int) -> String? {
        // The common case, checked on bytes: printable ASCII within the limit, not all spaces.
        if text.utf8.count <= limit, text.utf8.allSatisfy({ (0x20...0x7E).contains($0) }),
            text.utf8.contains(where: { $0 != 0x20 })
        {
            return nil
        }
        // Any printable ASCII byte but a space means the text is not blank.
        let blank = !text.utf8.contains { (0x21...0x7E).contains($0) } && text.trimmingCharacters(in: .whitespaces).isEmpty
        if blank { return "is empty; leave it out instead" }
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
