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

    public init(id: String, body: String?, tombstoned: Bool, change: Int64) {
        self.id = id
        self.body = body
        self.tombstoned = tombstoned
        self.change = change
    }
}

/// Where a mirror can follow Intercom's contacts from instead of Intercom itself: a store that
/// numbers its changes, so that a mirror asks only for those after the last it applied, with
/// no request to Intercom and no Intercom token (``IntercomMirror/follow(_:pageSize:)``).
public protocol ContactUpstream: Sendable {
    /// The contacts changed after change number `change`, in change order, at most `limit`.
    func contactChanges(since change: Int64, limit: Int) async throws -> [UpstreamContact]
}
