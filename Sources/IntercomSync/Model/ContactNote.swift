/// A note an admin wrote about a contact: one Intercom holds, or one written offline that waits
/// in the outbox.
public struct ContactNote: Sendable, Equatable {
    /// Intercom's id for the note; nil while it waits in the outbox.
    public var id: String?
    /// The note's text, HTML as Intercom keeps it.
    public var body: String
    /// The admin who wrote it, when known: the one named when it was staged, or Intercom's
    /// `author`.
    public var authorID: String?
    public var authorName: String?
    /// When Intercom took it (Unix seconds), or when it was staged.
    public var createdAt: Int
    /// The outbox entry that sends it, while the mirror has not read it back from Intercom:
    /// not sent yet (pending, in flight, unknown or failed), or sent with an answer that could
    /// not be read.
    public var outboxSeq: Int64?
    /// That entry's state.
    public var outboxState: OutboxState?

    public init(
        id: String?, body: String, authorID: String? = nil, authorName: String? = nil, createdAt: Int,
        outboxSeq: Int64? = nil, outboxState: OutboxState? = nil
    ) {
        self.id = id
        self.body = body
        self.authorID = authorID
        self.authorName = authorName
        self.createdAt = createdAt
        self.outboxSeq = outboxSeq
        self.outboxState = outboxState
    }
}

/// A contact's notes as the mirror knows them.
public struct ContactNotes: Sendable, Equatable {
    /// The notes written offline and not read back from Intercom yet, oldest first, then those Intercom holds
    /// that the mirror has read, newest first.
    public var notes: [ContactNote]
    /// How many notes the contact has on Intercom, as its stored version says; nil when that
    /// version does not say.
    public var totalOnIntercom: Int?

    public init(notes: [ContactNote], totalOnIntercom: Int?) {
        self.notes = notes
        self.totalOnIntercom = totalOnIntercom
    }

    /// The notes Intercom holds that the mirror has not read: a refresh of the contact brings
    /// them.
    public var missing: Int {
        max(0, (totalOnIntercom ?? 0) - notes.filter { $0.id != nil }.count)
    }
}
