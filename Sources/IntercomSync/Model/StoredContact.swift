import Foundation
import GRDB

/// A contact as the mirror holds it: Intercom's fields plus where it stands locally.
public struct StoredContact: Sendable, Hashable {
    public var contact: Contact
    public var state: ContactState
    /// The ETag the server sent with this version, if it sent one.
    public var etag: String?
    /// When this version was fetched from Intercom (Unix seconds).
    public var fetchedAt: Int?
    /// When the server last confirmed this version is current (Unix seconds).
    public var validatedAt: Int?
    /// The body exactly as Intercom sent it; loaded by `ContactMirror.contact(id:)`, nil in
    /// query results.
    public var body: String?
    /// The mirror's row number: stable for the life of the row, used for keyset pagination.
    public var rowID: Int64

    public var id: String { contact.id }
}

extension StoredContact: FetchableRecord {
    /// The columns a query selects (`body` only when asked).
    static let columns =
        "row_id, id, external_id, role, email, phone, name, avatar, owner_id, custom_attributes, created_at, updated_at, state, etag, fetched_at, validated_at"

    /// `columns`, each qualified with `contacts.`, for queries that join the FTS table.
    static let qualifiedColumns = columns.split(separator: ", ").map { "contacts.\($0)" }.joined(separator: ", ")

    /// Reads the row by position (in `columns` order), which spares a name lookup per column on
    /// the query path.
    public init(row: Row) throws {
        let attributesText: String = row[9]
        var attributes: [String: JSONValue] = [:]
        if attributesText != "{}", case .object(let fields) = try JSONValue(jsonText: attributesText) {
            attributes = fields
        }
        let roleText: String = row[3]
        let stateText: String = row[12]
        guard let role = ContactRole(rawValue: roleText), let state = ContactState(rawValue: stateText) else {
            throw MirrorError(.corrupt, detail: "contact \(row[1] as String? ?? "?") has role \(roleText), state \(stateText)")
        }
        contact = Contact(
            id: row[1], externalID: row[2], role: role, email: row[4], phone: row[5], name: row[6], avatarURL: row[7],
            ownerID: row[8], customAttributes: attributes, createdAt: row[10], updatedAt: row[11])
        self.state = state
        etag = row[13]
        fetchedAt = row[14]
        validatedAt = row[15]
        body = row.count > 16 ? row[16] : nil
        rowID = row[0]
    }
}
