/// The operations a flush performs on the store that holds the outbox: what `OutboxFlush` needs,
/// and all it may do. Each is one transaction of the store's own, named for what it means
/// ("prepare an update", "complete a create"), so that the flush's logic (the merge, at most
/// once, the order) is written once whichever store holds the entries: the local mirror, or,
/// for a team, a store that flush workers on several machines share.
package protocol OutboxStore: Sendable {
    /// Holds the store for one flush at a time, across processes, for as long as the token
    /// lives; refuses (or waits up to `seconds`) while another holds it.
    func lockForFlush(purpose: String, waiting seconds: Double) async throws -> any Sendable

    // MARK: The queue

    /// Entries found in flight when a flush starts (a flush died) are settled as the kind
    /// allows; answers them and how many entries wait.
    func beginFlush(now: Int) async throws -> (interrupted: [Int64], queued: Int)
    func pendingEntries(of kinds: [OutboxEntry.Kind], after seq: Int64, limit: Int) async throws -> [OutboxEntry]
    /// Writes the create entries of up to `limit` imported contacts; false when none wait.
    func queueImportedCreates(limit: Int, now: Int) async throws -> Bool
    func outboxLeft() async throws -> (failed: Int, unknown: Int, conflict: Int, pending: Int)
    /// Checks the server's workspace against the one the store is bound to (`WorkspaceBinding`).
    func bind(to server: WorkspaceIdentity, rebind: Bool) async throws -> WorkspaceBinding

    // MARK: One entry

    /// Marks an entry in flight, when it is still pending; false otherwise.
    func markInFlight(seq: Int64, now: Int) async throws -> Bool
    func settle(
        seq: Int64, state: OutboxState, error: OutboxEntry.Failure?, remoteID: String?, nextAttemptAt: Int?, now: Int
    ) async throws

    func completeCreate(seq: Int64, localID: String, contactJSON: String, now: Int) async throws
    func completeAdoptedCreate(
        seq: Int64, localID: String, contactJSON: String, disputed: [ContactMirror.FieldEdit], now: Int
    ) async throws

    func prepareUpdate(seq: Int64, now: Int) async throws -> UpdateReadiness
    func completeUpdate(
        seq: Int64, contactID: String, edits: [ContactMirror.FieldEdit], outcomes: [ContactField: EditOutcome],
        contactJSON: String, now: Int
    ) async throws -> [ContactField]
    func failUpdateOfGoneContact(seq: Int64, contactID: String, failure: OutboxEntry.Failure, now: Int) async throws

    func prepareTagging(seq: Int64, now: Int) async throws -> EntryReadiness
    func completeTagging(seq: Int64, tagID: String?, name: String, contactID: String, untag: Bool, now: Int)
        async throws

    func prepareMessage(seq: Int64, senderID: String?, now: Int, grace: Int) async throws -> EntryReadiness
    func defaultSenderID() throws -> String?
    func rememberDefaultSender(_ id: String) throws

    func prepareNote(seq: Int64, now: Int) async throws -> EntryReadiness
    func storeNotes(_ notes: [JSONValue], of contactID: String, complete: Bool) async throws

    func prepareDelete(seq: Int64, now: Int) async throws -> String?
    func completeDelete(seq: Int64, contactID: String, now: Int) async throws
}

/// The local mirror holds its own outbox.
extension ContactMirror: OutboxStore {
    package func lockForFlush(purpose: String, waiting seconds: Double) async throws -> any Sendable {
        try await MirrorLock.acquire(self, purpose: purpose, waiting: seconds)
    }
}
