/// An entry a mirror hands to its upstream's outbox (a team's, which flush workers drain): the
/// mirror's own sequence number stands for it there, so handing it over again adds nothing.
public struct PushedEntry: Sendable, Equatable {
    /// The entry's sequence number in the mirror that staged it.
    public var originSeq: Int64
    public var kind: OutboxEntry.Kind
    /// The contact it acts on: an Intercom id, or the mirror's local id of a contact whose
    /// create it waits for.
    public var contactID: String?
    /// The mirror's sequence number of the entry this one waits for (a contact's create),
    /// pushed before it or in the same push.
    public var dependsOnOriginSeq: Int64?
    /// The request as the upstream's workers send it (see the team outbox's payloads).
    public var payload: String
    public var createdAt: Int
    /// When a person put it back in the queue (`outbox retry`) after it failed or ended
    /// unknown, nil if no one did: a new mark queues it again upstream, while a push repeated
    /// with the same mark (after a lost answer) leaves it as it ended.
    public var retryMark: Int?

    public init(
        originSeq: Int64, kind: OutboxEntry.Kind, contactID: String?, dependsOnOriginSeq: Int64? = nil, payload: String,
        createdAt: Int, retryMark: Int? = nil
    ) {
        self.originSeq = originSeq
        self.kind = kind
        self.contactID = contactID
        self.dependsOnOriginSeq = dependsOnOriginSeq
        self.payload = payload
        self.createdAt = createdAt
        self.retryMark = retryMark
    }
}

/// How a pushed entry ended, as the upstream's outbox tells the mirror that pushed it.
public struct UpstreamOutcome: Sendable, Equatable {
    /// The entry's sequence number in the mirror that pushed it.
    public var originSeq: Int64
    public var kind: OutboxEntry.Kind
    /// Sent, failed, unknown, in conflict or superseded.
    public var state: OutboxState
    /// What Intercom named: a create's contact id, a tag's id, a message's id.
    public var remoteID: String?
    public var failure: OutboxEntry.Failure?
    /// The payload the workers sent (an update's edits, with their bases).
    public var payload: String
    /// What the worker learnt beyond the state (JSON): a create that took over a contact
    /// Intercom had, with the fields it held other values for; an update's conflicts.
    public var outcome: String?
    /// The contact as the upstream's replica holds it now, for a create or an update.
    public var contactBody: String?
    /// Its change number upstream: the mirror asks for the outcomes after the last it applied.
    public var change: Int64

    public init(
        originSeq: Int64, kind: OutboxEntry.Kind, state: OutboxState, remoteID: String?, failure: OutboxEntry.Failure?,
        payload: String, outcome: String?, contactBody: String?, change: Int64
    ) {
        self.originSeq = originSeq
        self.kind = kind
        self.state = state
        self.remoteID = remoteID
        self.failure = failure
        self.payload = payload
        self.outcome = outcome
        self.contactBody = contactBody
        self.change = change
    }
}

/// An upstream that takes a mirror's outbox entries and tells it how they ended: a team's
/// store, whose flush workers send what agents' mirrors stage.
public protocol OutboxUpstream: Sendable {
    /// Adds `entries` from the mirror named `origin`, in order, and answers their numbers
    /// upstream. An entry pushed before is not added again.
    func push(_ entries: [PushedEntry], from origin: String, now: Int) async throws -> [Int64]
    /// The entries `origin` pushed that ended (sent, failed, unknown, in conflict, superseded)
    /// or changed state since change `change`, in change order, at most `limit`.
    func outcomes(of origin: String, since change: Int64, limit: Int) async throws -> [UpstreamOutcome]
}
