/// What one flush did, and what in the outbox needs attention afterwards.
public struct FlushSummary: Sendable, Equatable {
    /// Entries this flush set out to send (pending when it started).
    public var queued = 0
    /// Creates that made a new contact, and creates that met 409 and adopted the existing one.
    public var contactsCreated = 0
    public var contactsAdopted = 0
    public var messagesSent = 0
    /// Notes written on contacts.
    public var notesAdded = 0
    /// Contacts deleted on Intercom (or found gone already).
    public var contactsDeleted = 0
    /// Contacts archived or unarchived on Intercom.
    public var contactsArchived = 0
    /// Tags put on or taken off contacts.
    public var taggings = 0
    /// Contacts whose offline edits were merged and sent (or found on Intercom already).
    public var contactsUpdated = 0
    /// Contacts whose edits met a change of the same field on Intercom: the rest was sent,
    /// and the entry waits in `conflict` for a person.
    public var conflicts = 0
    /// Entries Intercom refused for good (other 4xx): they stay `failed` with its error.
    public var failed = 0
    /// Messages and notes whose request may or may not have reached Intercom (a timeout, a dropped
    /// connection, a 5xx): `unknown`, never sent again unless a person retries it (``IntercomMirror/retryEntry(seq:)``).
    public var unknown = 0
    /// Messages a previous flush left in flight (it died mid-request), now `unknown`.
    public var interrupted: [Int64] = []
    /// Entries left `pending` after a transient failure: the next flush tries them again.
    public var deferred = 0
    /// Messages whose recipient's create has not been pushed (it failed or was deferred).
    public var blocked = 0
    /// Set when Intercom refused the token: the flush stopped there.
    public var stoppedBy: IntercomError?
    /// Set when Intercom could not be reached, or stopped answering: the flush stopped there,
    /// and every entry it had not sent stays queued for the next one.
    public var unreachable: IntercomError?
    /// Requests sent, 429 answers received and retries, from the client's counters.
    public var requests = 0
    public var rateLimited = 0
    public var retries = 0
    /// Wall time in seconds.
    public var duration = 0.0
    /// Entries in the whole outbox, after the flush, that need a person: `failed` and `unknown`.
    public var failedInOutbox = 0
    public var unknownInOutbox = 0
    public var conflictInOutbox = 0
    /// Entries still queued after the flush (imported contacts whose entries are not written
    /// yet included): what the next flush will send.
    public var pendingInOutbox = 0

    public init() {}

    public var sent: Int {
        contactsCreated + contactsAdopted + messagesSent + taggings + contactsUpdated + notesAdded + contactsDeleted
            + contactsArchived
    }
    /// True when some entry needs a person's decision: retry it or drop it
    /// (``IntercomMirror/retryEntry(seq:)``, ``IntercomMirror/dropEntry(seq:cascade:)``).
    public var needsAttention: Bool { failedInOutbox > 0 || unknownInOutbox > 0 || conflictInOutbox > 0 }
}

/// How far a flush has come, for progress bars.
public struct FlushProgress: Sendable, Equatable {
    /// Entries that reached an outcome so far: sent, failed or unknown. Entries deferred or
    /// waiting for a create stay queued, and do not count.
    public var done: Int
    public var total: Int
}
