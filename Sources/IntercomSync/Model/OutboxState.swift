/// Where an outbox entry stands.
public enum OutboxState: String, Sendable, Codable, CaseIterable {
    case pending
    case inFlight = "in_flight"
    case sent
    case failed
    case unknown
    /// An edit that met a change of the same field on Intercom: the rest of the contact's
    /// edits were sent, and this one waits for a person to keep theirs or ours.
    case conflict
    /// Ended without a request of its own, and needs nothing more: a delete of the contact
    /// won over its edits, or a person settled its conflict (keeping Intercom's value, or
    /// keeping ours, which a newer entry then sends), or its edits were set back to Intercom's
    /// values. `lastError` says which.
    case superseded
    /// Handed to a team's outbox, by a mirror that follows the team's store: one of the
    /// team's flush workers sends it, and the mirror learns how it ended from a later sync.
    case pushed
}
