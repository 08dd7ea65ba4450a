import Foundation
import GRDB

extension StoredContact: MirrorRow {
    /// The columns a query selects (`body` only when asked).
    static let columns =
        "row_id, id, external_id, role, email, phone, name, avatar, owner_id, custom_attributes, created_at, updated_at, state, etag, fetched_at, validated_at"

    /// `columns`, each qualified with `contacts.`, for queries that join the FTS table.
    static let qualifiedColumns = columns.split(separator: ", ").map { "contacts.\($0)" }.joined(separator: ", ")

    /// Reads the row by position (in `columns` order), which spares a name lookup per column on
    /// the query path.
    init(row: Row) throws {
        try self.init(columns: RowColumns(row: row))
    }

    /// Reads a row by position from GRDB or from a raw statement (`MirrorReader`), in `columns`
    /// order, `body` last when selected.
    init<Columns: ContactColumns>(columns row: Columns) throws {
        let attributesText = row.string(9) ?? "{}"
        var attributes: [String: JSONValue] = [:]
        do {
            if attributesText != "{}", case .object(let fields) = try JSONValue(jsonText: attributesText) {
                attributes = fields
            }
        } catch {
            throw MirrorError(
                .corrupt,
                detail: "contact \(row.string(1) ?? "?") is damaged in the mirror (its custom attributes: \(error))",
                remedy: .repairContacts)
        }
        let roleText = row.string(3) ?? ""
        let stateText = row.string(12) ?? ""
        guard let id = row.string(1), let role = ContactRole(rawValue: roleText),
            let state = ContactState(rawValue: stateText), let createdAt = row.int64(10), let updatedAt = row.int64(11),
            let rowID = row.int64(0)
        else {
            throw MirrorError(
                .corrupt,
                detail: "contact \(row.string(1) ?? "?") is damaged in the mirror (role \(roleText), state \(stateText))",
                remedy: .repairContacts)
        }
        contact = Contact(
            id: id, externalID: row.string(2), role: role, email: row.string(4), phone: row.string(5),
            name: row.string(6), avatarURL: row.string(7), ownerID: row.string(8), customAttributes: attributes,
            createdAt: Int(createdAt), updatedAt: Int(updatedAt))
        self.state = state
        etag = row.string(13)
        fetchedAt = row.int64(14).map(Int.init)
        validatedAt = row.int64(15).map(Int.init)
        body = row.count > 16 ? row.string(16) : nil
        if body == "" && state == .pending { body = Self.localBody(of: contact) }
        self.rowID = rowID
    }

    /// The body of a contact created locally and not pushed yet, which the mirror does not
    /// store: the create request plus the fields Intercom would add.
    static func localBody(of contact: Contact) -> String {
        let draft = ContactDraft(
            role: contact.role, email: contact.email ?? "", name: contact.name, phone: contact.phone,
            avatar: contact.avatarURL, externalID: contact.externalID, customAttributes: contact.customAttributes)
        var body = #"{"type":"contact","id":"#
        JSONValue.appendQuoted(contact.id, to: &body)
        body += #","created_at":\#(contact.createdAt),"updated_at":\#(contact.updatedAt)"#
        if draft.customAttributes.isEmpty { body += #","custom_attributes":{}"# }
        return body + "," + draft.requestBodyText.dropFirst()
    }
}

private struct RowColumns: ContactColumns {
    let row: Row

    var count: Int { row.count }

    /// Text as SQLite's `sqlite3_column_text` gives it: a number stored in a text column (an
    /// `owner_id` Intercom sent as an integer) reads as its digits.
    func string(_ index: Int) -> String? {
        let value: DatabaseValue = row[index]
        switch value.storage {
        case .null: return nil
        case .string(let text): return text
        case .int64(let number): return String(number)
        case .double(let number): return String(number)
        case .blob(let data): return String(decoding: data, as: UTF8.self)
        }
    }

    func int64(_ index: Int) -> Int64? { row[index] }
}

/// A result row read by column position.
protocol ContactColumns {
    var count: Int { get }
    func string(_ index: Int) -> String?
    func int64(_ index: Int) -> Int64?
}
