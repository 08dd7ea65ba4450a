/// A contact as an upstream store holds it (a team's store that one puller fills from
/// Intercom), and the change that last touched it.
public struct UpstreamContact: Sendable, Equatable {
    public var id: String
    /// Intercom's body as it sent it; nil for a contact tombstoned before any body was stored.
    public var body: String?
    /// Deleted, archived or merged away on Intercom.
    public var tombstoned: Bool
    /// Its change number upstream: every change takes the next one.
    public var change: Int64
    /// Its tags, companies and segments, all of them; nil when the upstream does not know them
    /// apart from its body's lists.
    public var links: [UpstreamLink]?
    /// The columns a store keeps beside the body, as a mirror derived them from it; nil when
    /// the store must read them from the body itself.
    package var columns: UpstreamColumns?

    public init(id: String, body: String?, tombstoned: Bool, change: Int64, links: [UpstreamLink]? = nil) {
        self.id = id
        self.body = body
        self.tombstoned = tombstoned
        self.change = change
        self.links = links
    }
}

/// What a store keeps of a contact beside its body, to query it by.
package struct UpstreamColumns: Sendable, Equatable {
    package var email: String?
    package var externalID: String?
    package var role: String?
    package var name: String?
    package var phone: String?
    package var updatedAt: Int

    package init(
        email: String?, externalID: String?, role: String?, name: String?, phone: String?, updatedAt: Int
    ) {
        self.email = email
        self.externalID = externalID
        self.role = role
        self.name = name
        self.phone = phone
        self.updatedAt = updatedAt
    }
}

/// One of a contact's links: a tag, company or segment it belongs to.
public struct UpstreamLink: Sendable, Hashable {
    public var kind: LinkKind
    /// The tag's, company's or segment's Intercom id.
    public var target: String

    public init(kind: LinkKind, target: String) {
        self.kind = kind
        self.target = target
    }
}

/// The workspace's tags, companies and segments, as an upstream holds them.
public struct UpstreamDirectory: Sendable, Equatable {
    public struct Named: Sendable, Equatable {
        public var id: String
        public var name: String
        /// A segment's: `user`, `lead` or `user_lead`.
        public var personType: String?
        public var createdAt: Int?
        public var updatedAt: Int?

        public init(id: String, name: String, personType: String? = nil, createdAt: Int? = nil, updatedAt: Int? = nil) {
            self.id = id
            self.name = name
            self.personType = personType
            self.createdAt = createdAt
            self.updatedAt = updatedAt
        }
    }

    public var tags: [Named]
    /// Each company's body as Intercom sent it.
    public var companies: [String]
    public var segments: [Named]

    public init(tags: [Named], companies: [String], segments: [Named]) {
        self.tags = tags
        self.companies = companies
        self.segments = segments
    }
}

/// Where a mirror can follow Intercom's contacts from instead of Intercom itself: a store that
/// numbers its changes, so that a mirror asks only for those after the last it applied, with
/// no request to Intercom and no Intercom token (``IntercomMirror/follow(_:pageSize:)``).
public protocol ContactUpstream: Sendable {
    /// The contacts changed after change number `change`, in change order, at most `limit`.
    func contactChanges(since change: Int64, limit: Int) async throws -> [UpstreamContact]
    /// The workspace's tags, companies and segments, with the change number they stand at;
    /// nil for an upstream that keeps none.
    func directory() async throws -> (directory: UpstreamDirectory, change: Int64)?
    /// A name the upstream keeps for good, and no other has: a store rebuilt at the same
    /// address has another, a copy restored from its backup the same. A mirror's change number
    /// counts one upstream's changes, so a mirror refuses to follow an upstream whose name is
    /// not the one it followed. Nil for an upstream that has none.
    func identity() async throws -> String?
}

extension ContactUpstream {
    public func directory() async throws -> (directory: UpstreamDirectory, change: Int64)? { nil }
    public func identity() async throws -> String? { nil }
}
