import GRDB

/// An Intercom list or search page taken apart for the mirror in one pass over its bytes.
struct ScannedPage: Sendable {
    var contacts: [ScannedContact] = []
    /// `pages.next.starting_after`.
    var nextCursor: String?
    var totalCount: Int?

    init(_ text: String) throws {
        var text = text
        var type: JSONValue?
        var sawData = false
        var contacts: [ScannedContact] = []
        var nextCursor: String?
        var totalCount: Int?
        do {
            try text.withUTF8 { bytes in
                var reader = JSONReader(bytes)
                guard reader.peek() == UInt8(ascii: "{") else { throw reader.error("expected an object") }
                try reader.readObject { (reader, key) throws(JSONReadError) in
                    switch key {
                    case "type": type = try reader.readValue()
                    case "total_count":
                        if case .int(let count) = try reader.readValue() { totalCount = Int(count) }
                    case "pages":
                        if case .object(let pages) = try reader.readValue(), case .object(let next)? = pages["next"],
                            case .string(let cursor)? = next["starting_after"]
                        {
                            nextCursor = cursor
                        }
                    case "data" where reader.peek() == UInt8(ascii: "["):
                        sawData = true
                        try reader.readArray { (reader) throws(JSONReadError) in
                            contacts.append(try ScannedContact(&reader))
                        }
                    default: try reader.skipValue()
                    }
                }
                try reader.expectEnd()
            }
        } catch {
            throw MirrorError(.malformedResponse, detail: "the page is not valid JSON (\(error))")
        }
        guard type == .string("list"), sawData else {
            throw MirrorError(.malformedResponse, detail: "the page is not an Intercom list (no \"data\" array)")
        }
        self.contacts = contacts
        self.nextCursor = nextCursor
        self.totalCount = totalCount
    }
}

/// One contact as the mirror stores it: the fields it indexes, read leniently (a wrong type is
/// stored as it came and left to the table's constraints), and its raw bytes as the body.
struct ScannedContact: Sendable {
    var fields: [Field: JSONValue] = [:]
    var avatar: JSONValue?
    /// The raw text of `custom_attributes` when it is an object.
    var customAttributes = "{}"
    var body = ""

    enum Field: String {
        case id, role, email, phone, name
        case externalID = "external_id"
        case ownerID = "owner_id"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    var id: String? { fields[.id]?.string }
    var updatedAt: Int? { fields[.updatedAt]?.int }

    /// Reads the object at the reader's position.
    init(_ reader: inout JSONReader) throws(JSONReadError) {
        reader.skipWhitespace()
        let start = reader.offset
        guard reader.peek() == UInt8(ascii: "{") else {
            // Not an object: keep its text so the constraints refuse it and the decoder says why.
            body = reader.text(try reader.skipValue())
            return
        }
        try reader.readObject { (reader, key) throws(JSONReadError) in
            if let field = Field(rawValue: key) {
                fields[field] = try reader.readValue()
            } else if key == "avatar" {
                switch try reader.readValue() {
                case .object(let avatar): self.avatar = avatar["image_url"]
                case let value: self.avatar = value
                }
            } else if key == "custom_attributes" {
                if reader.peek() == UInt8(ascii: "{") {
                    customAttributes = reader.text(try reader.skipValue())
                } else {
                    try reader.skipValue()
                }
            } else {
                try reader.skipValue()
            }
        }
        body = reader.text(start..<reader.offset)
    }

    /// Reads a single contact body (`GET /contacts/{id}`).
    static func read(_ text: String) throws -> ScannedContact {
        var text = text
        do {
            return try text.withUTF8 { bytes in
                var reader = JSONReader(bytes)
                let contact = try ScannedContact(&reader)
                try reader.expectEnd()
                return contact
            }
        } catch {
            throw MirrorError(.malformedResponse, detail: "the response is not valid JSON (\(error))")
        }
    }

    /// ?1…?13 of the upsert statement.
    func arguments(fetchedAt: Int) -> StatementArguments {
        let avatarValue: DatabaseValue
        switch avatar {
        case .string(let url)?: avatarValue = url.databaseValue
        default: avatarValue = .null
        }
        return [
            column(.id), column(.externalID), column(.role), column(.email), column(.phone), column(.name),
            avatarValue, column(.ownerID), customAttributes, column(.createdAt), column(.updatedAt), body, fetchedAt,
        ]
    }

    /// A field as SQLite's `->>` would give it: scalars as themselves, containers as JSON text.
    private func column(_ field: Field) -> DatabaseValue {
        switch fields[field] {
        case nil, .null?: return .null
        case .bool(let flag)?: return (flag ? 1 : 0).databaseValue
        case .int(let number)?: return number.databaseValue
        case .double(let number)?: return number.databaseValue
        case .string(let text)?: return text.databaseValue
        case let container?: return container.jsonText.databaseValue
        }
    }
}
