/// A typed query over the mirror. Every value becomes an SQL argument; none is spliced into
/// SQL text.
public struct ContactQuery: Sendable, Hashable {
    /// Exact email, compared case-insensitively.
    public var email: String?
    public var externalID: String?
    public var role: ContactRole?
    /// A substring of the name, case-insensitive.
    public var nameContains: String?
    /// Full-text prefix search over name, email and phone: every word must start a word of the
    /// contact's (`ana lop` finds "Ana López"), or of the name of one of its companies (`acme`
    /// finds Acme's people). Accents are ignored.
    public var search: String?
    /// `updated_at >= updatedSince` (Unix seconds).
    public var updatedSince: Int?
    /// `updated_at < updatedBefore` (Unix seconds).
    public var updatedBefore: Int?
    /// States to include; tombstoned contacts are hidden unless asked for.
    public var states: Set<ContactState>
    /// Only the contacts archived from this mirror (`IntercomMirror.stageArchive`), the archive
    /// sent or waiting, and not unarchived since. They are tombstones to the mirror, as Intercom
    /// hides them: ask for `.tombstoned` in `states` too.
    public var archivedOnly = false
    /// Custom attributes that must equal the given values (type included: `"1"` is not `1`).
    public var customAttributes: [String: JSONValue]
    /// Tag names the contact must carry, every one (case-insensitive).
    public var tags: [String]
    /// Tag names of which the contact must carry at least one.
    public var anyTags: [String]
    /// Companies, by name (case-insensitive) or `company_id`, the contact must belong to at
    /// least one of.
    public var companies: [String]
    /// Segment names the contact must be in, every one (the mirror keeps segment memberships
    /// once ``IntercomMirror/keepSegmentMemberships(_:)`` turned them on).
    public var segments: [String]
    public var sort: ContactSort
    /// Page size, 1...10_000.
    public var limit: Int
    /// Continue after the last row of a previous page (`ContactPage.nextCursor`).
    public var cursor: ContactCursor?

    /// A query in one expression: every criterion given must match.
    ///
    ///     ContactQuery(role: .lead, tags: ["VIP"], sort: ContactSort(.name), limit: 20)
    public init(
        email: String? = nil, externalID: String? = nil, role: ContactRole? = nil, nameContains: String? = nil,
        search: String? = nil, updatedSince: Int? = nil, updatedBefore: Int? = nil,
        states: Set<ContactState> = [.synced, .pending], customAttributes: [String: JSONValue] = [:],
        tags: [String] = [], anyTags: [String] = [], companies: [String] = [], segments: [String] = [],
        sort: ContactSort = ContactSort(.updatedAt, descending: true), limit: Int = 50, cursor: ContactCursor? = nil
    ) {
        self.email = email
        self.externalID = externalID
        self.role = role
        self.nameContains = nameContains
        self.search = search
        self.updatedSince = updatedSince
        self.updatedBefore = updatedBefore
        self.states = states
        self.customAttributes = customAttributes
        self.tags = tags
        self.anyTags = anyTags
        self.companies = companies
        self.segments = segments
        self.sort = sort
        self.limit = limit
        self.cursor = cursor
    }
}

/// The order of query results. Ties break on the mirror's row order, so pages never overlap.
public struct ContactSort: Sendable, Hashable {
    public enum Field: String, Sendable, CaseIterable {
        case updatedAt = "updated_at"
        case name
        case email
        /// Best match first; only with `ContactQuery.search`. Names that begin with the words
        /// as typed come first, then names that begin with them as a prefix, then names with
        /// every word somewhere, then matches in the email or phone; the mirror's order within
        /// each. A page reads only as far as it needs, however many contacts match.
        case relevance
        /// The order contacts entered the mirror (for a full pull, Intercom's list order). The
        /// fastest: a search stops reading as soon as the page is full.
        case stored
    }

    public var field: Field
    public var descending: Bool

    public init(_ field: Field, descending: Bool = false) {
        self.field = field
        self.descending = descending
    }
}

/// One page of query results.
public struct ContactPage: Sendable, Equatable {
    public var contacts: [StoredContact]
    /// Pass as `ContactQuery.cursor` to get the next page; nil when this page is the last.
    public var nextCursor: ContactCursor?

    public init(contacts: [StoredContact], nextCursor: ContactCursor? = nil) {
        self.contacts = contacts
        self.nextCursor = nextCursor
    }
}

/// Why a query cannot run.
public struct QueryError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}

extension QueryError: IntercomSyncError {
    /// None: the description names the filter to fix.
    public var remedy: ErrorRemedy? { nil }
}
