import Foundation

/// A contact as the mirror holds it: Intercom's fields plus where it stands locally.
public struct StoredContact: Sendable, Hashable, Identifiable {
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

    public init(
        contact: Contact, state: ContactState = .synced, etag: String? = nil, fetchedAt: Int? = nil,
        validatedAt: Int? = nil, body: String? = nil, rowID: Int64 = 0
    ) {
        self.contact = contact
        self.state = state
        self.etag = etag
        self.fetchedAt = fetchedAt
        self.validatedAt = validatedAt
        self.body = body
        self.rowID = rowID
    }

    public var id: String { contact.id }
}
