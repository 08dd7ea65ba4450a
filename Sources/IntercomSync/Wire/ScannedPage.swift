import Foundation
import IntercomJSON

/// An Intercom list or search page taken apart for the mirror in one pass over its bytes.
struct ScannedPage: Sendable {
    var contacts: [ScannedContact] = []
    /// `pages.next.starting_after`.
    var nextCursor: String?
    var totalCount: Int?

    init(_ text: String) throws {
        var text = text
        self = try text.withUTF8 { try ScannedPage(utf8: $0) }
    }

    /// Reads a page from its bytes as received, without making a `String` of the whole of it
    /// first (invalid UTF-8 inside a value is repaired as `String(decoding:)` repairs it).
    init(data: Data) throws {
        self = try data.withUnsafeBytes { try ScannedPage(utf8: $0.bindMemory(to: UInt8.self)) }
    }

    private init(utf8 bytes: UnsafeBufferPointer<UInt8>) throws {
        var type: JSONValue?
        var sawData = false
        var contacts: [ScannedContact] = []
        var nextCursor: String?
        var totalCount: Int?
        do {
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
    var fields = Fields()
    var avatar: JSONValue?
    /// The raw text of `custom_attributes` when it is an object.
    var customAttributes = "{}"
    var body = ""
    /// The body compressed by the store ahead of its writer, and the compressor that did it
    /// (`ScannedPage.pack(with:)`).
    var packed: (compressor: any AnyObject & Sendable, bytes: [UInt8])?
    /// The tags and companies the body lists; nil where it has no such list (the contact's
    /// links are then left as they are).
    var tags: LinkList?
    var companies: LinkList?

    enum Field: Int, CaseIterable {
        case id, role, email, phone, name, externalID, ownerID, createdAt, updatedAt

        /// The member's name in Intercom's JSON.
        var key: StaticString {
            switch self {
            case .id: "id"
            case .role: "role"
            case .email: "email"
            case .phone: "phone"
            case .name: "name"
            case .externalID: "external_id"
            case .ownerID: "owner_id"
            case .createdAt: "created_at"
            case .updatedAt: "updated_at"
            }
        }

        /// The field a member name is, if any: compared as bytes, shortest test first (most of a
        /// contact's forty members are none of these).
        static func named(_ key: JSONKey) -> Field? {
            allCases.first { key.is($0.key) }
        }
    }

    /// The indexed fields' values, stored in place rather than hashed into a dictionary.
    struct Fields: Sendable {
        private var values:
            (JSONValue?, JSONValue?, JSONValue?, JSONValue?, JSONValue?, JSONValue?, JSONValue?, JSONValue?, JSONValue?) =
                (nil, nil, nil, nil, nil, nil, nil, nil, nil)

        subscript(field: Field) -> JSONValue? {
            get {
                switch field {
                case .id: values.0
                case .role: values.1
                case .email: values.2
                case .phone: values.3
                case .name: values.4
                case .externalID: values.5
                case .ownerID: values.6
                case .createdAt: values.7
                case .updatedAt: values.8
                }
            }
            set {
                switch field {
                case .id: values.0 = newValue
                case .role: values.1 = newValue
                case .email: values.2 = newValue
                case .phone: values.3 = newValue
                case .name: values.4 = newValue
                case .externalID: values.5 = newValue
                case .ownerID: values.6 = newValue
                case .createdAt: values.7 = newValue
                case .updatedAt: values.8 = newValue
                }
            }
        }
    }

    var id: String? { fields[.id]?.string }
    /// Whether the body has links to write: a list of tags or companies, even an empty one
    /// (which clears a stored contact's).
    var hasLinks: Bool { tags != nil || companies != nil }
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
        try reader.readObjectKeys { (reader, key) throws(JSONReadError) in
            if let field = Field.named(key) {
                fields[field] = try reader.readValue()
            } else if key.is("avatar") {
                switch try reader.readValue() {
                case .object(let avatar): self.avatar = avatar["image_url"]
                case let value: self.avatar = value
                }
            } else if key.is("tags") {
                tags = try LinkList(&reader)
            } else if key.is("companies") {
                companies = try LinkList(&reader)
            } else if key.is("custom_attributes") {
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

    /// What SQLite stores for a column, as the mirror binds it.
    enum ColumnValue: Equatable {
        case null
        case int(Int64)
        case double(Double)
        case text(String)
    }

    /// The columns ?1…?11 of the upsert statement, in order.
    static let columns = [
        "id", "external_id", "role", "email", "phone", "name", "avatar", "owner_id", "custom_attributes", "created_at",
        "updated_at",
    ]

    /// The values of `columns`, as SQLite's `->>` would give them (scalars as themselves,
    /// containers as JSON text).
    var columnValues: [ColumnValue] {
        func value(_ json: JSONValue?) -> ColumnValue {
            switch json {
            case nil, .null?: return .null
            case .bool(let flag)?: return .int(flag ? 1 : 0)
            case .int(let number)?: return .int(number)
            case .double(let number)?: return .double(number)
            case .string(let text)?: return .text(text)
            case let container?: return .text(container.jsonText)
            }
        }
        var values = [Field.id, .externalID, .role, .email, .phone, .name].map { value(fields[$0]) }
        if case .string(let url)? = avatar { values.append(.text(url)) } else { values.append(.null) }
        values += [value(fields[.ownerID]), .text(customAttributes), value(fields[.createdAt]), value(fields[.updatedAt])]
        return values
    }
}

/// The references to tags or companies a contact's body lists (`{"type":"list","data":[{"id"…}],
/// "total_count":…,"has_more":…}`): Intercom lists 10 at most, and says when there are more.
struct LinkList: Sendable, Equatable {
    var ids: [String] = []
    /// False when the body says it lists only some (`has_more`, or a `total_count` above the
    /// ids): the rest must be read from the contact's own list (`/contacts/{id}/tags`).
    var complete = true

    init(ids: [String] = [], complete: Bool = true) {
        self.ids = ids
        self.complete = complete
    }

    /// Reads the list at the reader's position; nil, having skipped it, when it is no object.
    init?(_ reader: inout JSONReader) throws(JSONReadError) {
        guard reader.peek() == UInt8(ascii: "{") else {
            _ = try reader.skipValue()
            return nil
        }
        var ids: [String] = []
        var hasMore = false
        var total: Int64?
        try reader.readObjectKeys { (reader, key) throws(JSONReadError) in
            if key.is("data"), reader.peek() == UInt8(ascii: "[") {
                try reader.readArray { (reader) throws(JSONReadError) in
                    guard reader.peek() == UInt8(ascii: "{") else {
                        _ = try reader.skipValue()
                        return
                    }
                    try reader.readObjectKeys { (reader, key) throws(JSONReadError) in
                        guard key.is("id") else {
                            _ = try reader.skipValue()
                            return
                        }
                        switch try reader.readValue() {
                        case .string(let id): ids.append(id)
                        case .int(let id): ids.append(String(id))
                        default: break
                        }
                    }
                }
            } else if key.is("has_more") {
                hasMore = try reader.readValue() == .bool(true)
            } else if key.is("total_count") {
                total = try reader.readValue().int.map(Int64.init)
            } else {
                _ = try reader.skipValue()
            }
        }
        self.ids = ids
        complete = !hasMore && (total.map { $0 <= Int64(ids.count) } ?? true)
    }
}
