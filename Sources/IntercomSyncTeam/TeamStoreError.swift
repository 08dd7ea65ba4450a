import IntercomSync

/// A failure of the team store. Its description names the store by its redacted URL: a
/// password never appears in it.
public struct TeamStoreError: IntercomSyncError, Equatable {
    /// What kind of failure it is. New kinds may come with new versions: a `switch` over it
    /// needs a `default:`.
    public struct Kind: ErrorKind {
        public let name: String

        private init(_ name: String) { self.name = name }

        /// The store's URL cannot be read (`postgres://user:password@host:port/database`).
        public static let badURL = Kind("badURL")
        /// PostgreSQL could not be reached, or went away and did not come back in time.
        public static let unreachable = Kind("unreachable")
        /// PostgreSQL refused the login.
        public static let authentication = Kind("authentication")
        /// The store was written by a newer intercom-sync.
        public static let newerSchema = Kind("newerSchema")
        /// The lease of an outbox entry ran out, and another worker took the entry: the
        /// outcome of this one is not recorded.
        public static let fenced = Kind("fenced")
        /// An entry pushed by an agent does not read as an outbox entry.
        public static let badEntry = Kind("badEntry")
        /// Any other failure PostgreSQL reported.
        public static let storage = Kind("storage")
        /// Another puller holds the store.
        public static let busy = Kind("busy")
        /// The database holds no team store, and the one who opened it does not create one.
        public static let notAStore = Kind("notAStore")
    }

    public var kind: Kind
    public var detail: String
    public var remedy: ErrorRemedy?

    public init(_ kind: Kind, _ detail: String, remedy: ErrorRemedy? = nil) {
        self.kind = kind
        self.detail = detail
        self.remedy = remedy
    }

    public var description: String { detail }
}
