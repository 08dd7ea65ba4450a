/// Why a pull, refresh or flush could not run, in words a person can act on. Failures of
/// Intercom requests come as `IntercomError`, of the mirror as `MirrorError`.
public struct SyncError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Another pull or flush holds the mirror's lock.
        case busy
        /// The request needs something the mirror does not have yet (a first full pull…).
        case notReady
        /// The server is another workspace, or another API host, than the one the mirror
        /// mirrors (`WorkspaceBinding`).
        case foreignWorkspace
        /// A full walk would tombstone more of the mirror than is plausible; nothing of it was
        /// committed.
        case massDelete
        /// The mirror was opened without a connection to Intercom, and the call needs one.
        case notConnected
        /// The server kept a paged walk from moving forward (a cursor it gave before, the same
        /// page again): the walk stopped, its pages so far kept, resumable later.
        case stalledWalk
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
