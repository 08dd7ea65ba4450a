/// One queued operation in the outbox.
public struct OutboxEntry: Sendable, Equatable, Identifiable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case createContact = "create_contact"
        case sendMessage = "send_message"
        /// Tags the contact with the tag named in the payload (`{"name"}`), making the tag first
        /// if Intercom has none of that name.
        case tagContact = "tag_contact"
        /// Takes the tag named in the payload off the contact.
        case untagContact = "untag_contact"
        /// Sends the contact's offline edits (`IntercomMirror.stageEdit(_:to:)`), merged with
        /// what changed on Intercom since.
        case updateContact = "update_contact"
        /// Writes the note in the payload (`{"body", "admin_id"?}`) on the contact, at most once.
        case addNote = "add_note"
        /// Deletes the contact (`DELETE /contacts/{id}`); staged, it wins over the contact's edits.
        case deleteContact = "delete_contact"
        /// Archives the contact (`POST /contacts/{id}/archive`), or unarchives it.
        case archiveContact = "archive_contact"
        case unarchiveContact = "unarchive_contact"
    }

    /// What went wrong the last time: Intercom's answer, or one of ours for network failures.
    public struct Failure: Sendable, Equatable {
        public var status: Int?
        public var code: String
        public var message: String
        public var requestID: String?

        public init(status: Int?, code: String, message: String, requestID: String?) {
            self.status = status
            self.code = code
            self.message = message
            self.requestID = requestID
        }

        init(_ error: IntercomError) {
            self.init(status: error.status, code: error.code, message: error.message, requestID: error.requestID)
        }
    }

    /// The queue position: entries are sent in this order.
    public var seq: Int64
    public var kind: Kind
    /// The contact created, or the message's recipient (a local id until its create is pushed).
    public var contactID: String?
    /// The entry that must be sent first (a message's recipient's create).
    public var dependsOn: Int64?
    /// The request body as staged (JSON).
    public var payload: String
    public var state: OutboxState
    public var attempts: Int
    public var nextAttemptAt: Int?
    public var lastError: Failure?
    /// The Intercom id of what was created or sent.
    public var remoteID: String?
    public var createdAt: Int
    public var updatedAt: Int

    public init(
        seq: Int64, kind: Kind, contactID: String? = nil, dependsOn: Int64? = nil, payload: String,
        state: OutboxState = .pending, attempts: Int = 0, nextAttemptAt: Int? = nil, lastError: Failure? = nil,
        remoteID: String? = nil, createdAt: Int, updatedAt: Int
    ) {
        self.seq = seq
        self.kind = kind
        self.contactID = contactID
        self.dependsOn = dependsOn
        self.payload = payload
        self.state = state
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.lastError = lastError
        self.remoteID = remoteID
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// The queue position.
    public var id: Int64 { seq }
}

/// A staging or outbox command that cannot be done as asked.
public struct OutboxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure it is. New kinds may come with new versions: a `switch` over it
    /// needs a `default:`, which a new kind does not break.
    public struct Kind: ErrorKind {
        public let name: String

        private init(_ name: String) { self.name = name }

        /// The email belongs to a contact the mirror already has.
        public static let emailExists = Kind("emailExists")
        /// No contact in the mirror matches the message's recipient.
        public static let unknownRecipient = Kind("unknownRecipient")
        /// Several contacts share the recipient's email.
        public static let ambiguousRecipient = Kind("ambiguousRecipient")
        /// The recipient was deleted or merged away.
        public static let recipientGone = Kind("recipientGone")
        public static let noSuchEntry = Kind("noSuchEntry")
        /// The entry's state does not allow what was asked (retrying a sent message…).
        public static let wrongState = Kind("wrongState")
        /// Other entries wait for this one.
        public static let hasDependents = Kind("hasDependents")
        /// No admin to send as: `GET /me` has not answered yet and no `from` was given.
        public static let noSender = Kind("noSender")
    }

    public var kind: Kind
    public var description: String
    /// The contact that already has the email, for `.emailExists`.
    public var existingContactID: String?
    /// What would let it through.
    public var remedy: ErrorRemedy?

    public init(
        _ kind: Kind, _ description: String, existingContactID: String? = nil, remedy: ErrorRemedy? = nil
    ) {
        self.kind = kind
        self.description = description
        self.existingContactID = existingContactID
        self.remedy = remedy
    }
}
