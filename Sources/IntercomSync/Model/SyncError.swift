/// Why a pull, refresh or flush could not run, in words a person can act on. Failures of
/// Intercom requests come as `IntercomError`, of the mirror as `MirrorError`.
public struct SyncError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure it is. New kinds may come with new versions: a `switch` over it
    /// needs a `default:`, which a new kind does not break.
    public struct Kind: ErrorKind {
        public let name: String

        private init(_ name: String) { self.name = name }

        /// Another pull or flush holds the mirror's lock.
        public static let busy = Kind("busy")
        /// The request needs something the mirror does not have yet (a first full pull…).
        public static let notReady = Kind("notReady")
        /// The server is another workspace, or another API host, than the one the mirror
        /// mirrors (`WorkspaceBinding`).
        public static let foreignWorkspace = Kind("foreignWorkspace")
        /// A full walk would tombstone more of the mirror than is plausible; nothing of it was
        /// committed.
        public static let massDelete = Kind("massDelete")
        /// The mirror was opened without a connection to Intercom, and the call needs one.
        public static let notConnected = Kind("notConnected")
        /// The server kept a paged walk from moving forward (a cursor it gave before, the same
        /// page again): the walk stopped, its pages so far kept, resumable later.
        public static let stalledWalk = Kind("stalledWalk")
    }

    public var kind: Kind
    public var description: String
    /// What would let it run.
    public var remedy: ErrorRemedy?

    public init(_ kind: Kind, _ description: String, remedy: ErrorRemedy? = nil) {
        self.kind = kind
        self.description = description
        self.remedy = remedy
    }

    static func busy(_ description: String) -> SyncError { SyncError(.busy, description, remedy: .waitForLock) }
}
