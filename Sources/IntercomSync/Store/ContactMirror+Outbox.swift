import Foundation
import GRDB
import Synchronization

/// A contact staged by `stageContact`: its local id and its outbox entry.
public struct StagedContact: Sendable, Equatable, Identifiable {
    /// The id the contact is known by until its create is pushed, and an alias of its
    /// Intercom id after.
    public var localID: String
    /// Its create's place in the outbox.
    public var seq: Int64
    /// The contact's row in the mirror.
    var rowID: Int64 = 0

    public init(localID: String, seq: Int64) {
        self.localID = localID
        self.seq = seq
    }

    init(localID: String, seq: Int64, rowID: Int64) {
        self.localID = localID
        self.seq = seq
        self.rowID = rowID
    }

    public var id: String { localID }
}

/// A message staged by `stageMessage`.
public struct StagedMessage: Sendable, Equatable {
    public var seq: Int64
    /// The recipient's id now: a local id when it waits for its contact's create.
    public var recipientID: String
    /// The create entry the message waits for, when its recipient is not pushed yet.
    public var waitsFor: Int64?

    public init(seq: Int64, recipientID: String, waitsFor: Int64? = nil) {
        self.seq = seq
        self.recipientID = recipientID
        self.waitsFor = waitsFor
    }
}

/// What dropping an outbox entry removed.
public struct DroppedEntries: Sendable, Equatable {
    /// The entry asked for, then those that depended on it.
    public var seqs: [Int64]
    /// The unpushed local contact removed with its create, if any.
    public var removedContactID: String?

    public init(seqs: [Int64], removedContactID: String? = nil) {
        self.seqs = seqs
        self.removedContactID = removedContactID
    }
}

/// Staging writes and managing the outbox (the Guarantees article: a local write and its outbox entry commit together; a pushed contact takes its Intercom id; a message to a pending contact waits; a message is sent at most once). Every write
/// here is one transaction.
extension ContactMirror {
    // MARK: Staging

    /// Writes a new contact locally (state `pending`, id `local_<uuid>`) together with its
    /// `create_contact` entry. Refuses invalid input, and an email another contact already has
    /// unless `allowingDuplicateEmail`.
    package func stageContact(_ draft: ContactDraft, allowingDuplicateEmail: Bool = false, now: Int) throws
        -> StagedContact
    {
        try draft.validate()
        return try writer.write { db in
            try Self.stageContact(draft, allowingDuplicateEmail: allowingDuplicateEmail, now: now, in: db)
        }
    }

    static func stageContact(_ draft: ContactDraft, allowingDuplicateEmail: Bool, now: Int, in db: Database) throws
        -> StagedContact
    {
        if !allowingDuplicateEmail, let existing = try contactID(withEmail: draft.email, in: db) {
            throw OutboxError(
                .emailExists,
                "\(draft.email) already belongs to contact \(existing)", existingContactID: existing,
                remedy: .allowDuplicateEmail)
        }
        // Intercom would answer the create with the contact still to be deleted, which the flush
        // would take over and then delete: the delete goes first, or the create waits for it.
        if let doomed = try String.fetchOne(
            db,
            sql: """
                SELECT o.seq FROM outbox o JOIN contacts c ON c.id = o.contact_id
                WHERE o.kind = 'delete_contact' AND o.state IN ('pending', 'in_flight')
                    AND lower(ifnull(c.email, '')) = lower(?)
                """, arguments: [draft.email])
        {
            throw OutboxError(
                .emailExists,
                "\(draft.email) belongs to a contact that is to be deleted (#\(doomed), not sent yet): "
                    + "`intercom-sync outbox flush` first, then create it again")
        }
        let (localID, rowID) = try insertLocalContact(draft, now: now, in: db)
        let seq = try insertEntry(
            .createContact, contactID: localID, dependsOn: nil, payload: draft.requestBodyText, now: now, in: db)
        return StagedContact(localID: localID, seq: seq, rowID: rowID)
    }

    /// Writes a new local contact (state `pending`, id `local_<uuid>`) without its create entry:
    /// the caller writes that, or records the contact in `imported_creates`.
    static func insertLocalContact(_ draft: ContactDraft, now: Int, in db: Database) throws -> (
        localID: String, rowID: Int64
    ) {
        try LocalContactWriter(db).insert(draft, now: now, in: db)
    }

    /// Inserts local contacts through one prepared statement, looked up once: a bulk import
    /// makes one a batch, where a lookup a row hashed the statement's text a million times.
    /// A local contact's body stays empty: Intercom has sent none, and `StoredContact` derives
    /// one from the columns (`localBody`), sparing a million imported rows a third of their bytes.
    struct LocalContactWriter {
        private let statement: RawBinding

        init(_ db: Database) throws {
            statement = RawBinding(
                try db.cachedStatement(
                    sql: """
                        INSERT OR FAIL INTO contacts (
                            id, external_id, role, email, phone, name, avatar, custom_attributes, created_at,
                            updated_at, body, state)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', 'pending')
                        """))
        }

        func insert(_ draft: ContactDraft, now: Int, in db: Database) throws -> (localID: String, rowID: Int64) {
            let localID = newLocalID()
            statement.bind(1, localID)
            statement.bind(2, draft.externalID)
            statement.bind(3, draft.role.rawValue)
            statement.bind(4, draft.email)
            statement.bind(5, draft.phone)
            statement.bind(6, draft.name)
            statement.bind(7, draft.avatar)
            statement.bind(8, draft.customAttributes.isEmpty ? "{}" : JSONValue.object(draft.customAttributes).jsonText)
            statement.bind(9, Int64(now))
            statement.bind(10, Int64(now))
            try statement.execute(in: db)
            return (localID, db.lastInsertedRowID)
        }
    }

    /// `local_` and a UUID whose first 48 bits are the time in milliseconds (RFC 9562 version 7),
    /// so ids staged one after another land next to each other in the id index: a bulk import
    /// appends to it instead of writing all over it.
    static func newLocalID() -> String {
        let random = localIDRandom.withLock { generator in (generator.next(), generator.next()) }
        let milliseconds = UInt64(Date().timeIntervalSince1970 * 1000)
        // The 16 bytes: 48 bits of time, version 7, 12 random bits, variant 10, 62 random bits.
        let high = milliseconds << 16 | 0x7000 | (random.0 & 0x0FFF)
        let low = 0x8000_0000_0000_0000 | (random.1 & 0x3FFF_FFFF_FFFF_FFFF)
        return String(unsafeUninitializedCapacity: 42) { buffer in
            let digits: StaticString = "0123456789abcdef"
            var at = 0
            for byte in "local_".utf8 {
                buffer[at] = byte
                at += 1
            }
            for nibble in 0..<32 {
                if nibble == 8 || nibble == 12 || nibble == 16 || nibble == 20 {
                    buffer[at] = UInt8(ascii: "-")
                    at += 1
                }
                let word = nibble < 16 ? high : low
                let value = Int(truncatingIfNeeded: word >> UInt64(60 - 4 * (nibble % 16))) & 0x0F
                buffer[at] = digits.utf8Start[value]
                at += 1
            }
            return at
        }
    }

    /// Seeded once from the system's generator: a system call per id would cost more than the
    /// rest of a bulk import's row.
    private static let localIDRandom = Mutex(SplitMix64(seed: UInt64.random(in: .min ... .max)))

    /// Queues a message. Its recipient must be in the mirror (by id, local id or email); a
    /// recipient not pushed yet makes the message wait for that contact's create.
    package func stageMessage(_ draft: MessageDraft, now: Int) throws -> StagedMessage {
        try draft.validate()
        return try writer.write { db in try Self.stageMessage(draft, now: now, in: db) }
    }

    static func stageMessage(_ draft: MessageDraft, now: Int, in db: Database) throws -> StagedMessage {
        let recipient = try recipient(draft.to.trimmingCharacters(in: .whitespaces), in: db)
        let waitsFor = try createAwaited(by: recipient, now: now, in: db)
        let seq = try insertEntry(
            .sendMessage, contactID: recipient.id, dependsOn: waitsFor, payload: draft.payload.jsonText, now: now, in: db)
        return StagedMessage(seq: seq, recipientID: recipient.id, waitsFor: waitsFor)
    }

    /// The create entry an entry for `contact` must wait for: none for a pushed contact; for a
    /// pending one, its create (written now for an imported contact that has none yet).
    static func createAwaited(by contact: (id: String, state: ContactState), now: Int, in db: Database) throws -> Int64? {
        guard contact.state == .pending else { return nil }
        var waitsFor = try Int64.fetchOne(
            db,
            sql: """
                SELECT seq FROM outbox WHERE kind = 'create_contact' AND contact_id = ? AND state != 'sent'
                ORDER BY seq DESC LIMIT 1
                """, arguments: [contact.id])
        if waitsFor == nil { waitsFor = try queueImportedCreate(contactID: contact.id, now: now, in: db) }
        guard waitsFor != nil else {
            throw OutboxError(.unknownRecipient, "contact \(contact.id) was never queued for creation")
        }
        return waitsFor
    }

    static func insertEntry(
        _ kind: OutboxEntry.Kind, contactID: String, dependsOn: Int64?, payload: String, now: Int,
        createdAt: Int? = nil, in db: Database
    ) throws -> Int64 {
        try db.cachedStatement(
            sql: """
                INSERT OR FAIL INTO outbox (kind, contact_id, depends_on, payload, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [kind.rawValue, contactID, dependsOn, payload, createdAt ?? now, now])
        return db.lastInsertedRowID
    }

    /// A live contact with this email (synced before pending), or nil.
    /// An email with letters beyond ASCII is compared by Unicode's lower case (`UnicodeLower`),
    /// which no index serves: a scan, for the rare such address.
    static func contactID(withEmail email: String, in db: Database) throws -> String? {
        guard UnicodeLower.needsUnicode(email) else {
            return try String.fetchOne(db.cachedStatement(sql: contactIDByEmailSQL), arguments: [email])
        }
        return try String.fetchOne(
            db,
            sql: """
                SELECT id FROM contacts WHERE \(UnicodeLower.name)(ifnull(email, '')) = ? AND state != 'tombstoned'
                ORDER BY state = 'pending', row_id LIMIT 1
                """, arguments: [email.lowercased()])
    }

    static let contactIDByEmailSQL = """
        SELECT id FROM contacts WHERE ifnull(email, '') = ? COLLATE NOCASE AND state != 'tombstoned'
        ORDER BY state = 'pending', row_id LIMIT 1
        """

    /// `contactID(withEmail:in:)` through one prepared statement, looked up once (an import
    /// makes one a batch): a million duplicate rows spent most of their time in the lookup of
    /// the statement by its text and in boxing the argument.
    struct EmailLookup {
        private let statement: RawBinding

        init(_ db: Database) throws {
            statement = RawBinding(try db.cachedStatement(sql: contactIDByEmailSQL))
        }

        func contactID(withEmail email: String, in db: Database) throws -> String? {
            statement.bind(1, email)
            return try statement.firstText(in: db)
        }
    }

    /// Resolves a message's `to`: an id or local id (aliases followed), else an email.
    static func recipient(_ to: String, in db: Database) throws -> (id: String, state: ContactState) {
        if let row = try Row.fetchOne(
            db, sql: "SELECT id, state FROM contacts WHERE id = ?", arguments: [resolve(id: to, in: db)])
        {
            let state = ContactState(rawValue: row["state"]) ?? .synced
            guard state != .tombstoned else {
                let id: String = row["id"]
                if let staged = try Int64.fetchOne(
                    db,
                    sql: """
                        SELECT seq FROM outbox WHERE contact_id = ? AND kind IN ('delete_contact', 'archive_contact')
                            AND state IN ('pending', 'in_flight') ORDER BY seq DESC
                        """, arguments: [id])
                {
                    throw OutboxError(
                        .recipientGone,
                        "contact \(to) is to be deleted or archived (#\(staged), not sent yet): `outbox drop \(staged)` "
                            + "undoes that")
                }
                throw OutboxError(.recipientGone, "contact \(to) was deleted, archived or merged away in Intercom")
            }
            return (row["id"], state)
        }
        guard to.contains("@") else {
            throw OutboxError(.unknownRecipient, "no contact \(to) in the mirror", remedy: .sync)
        }
        let unicode = UnicodeLower.needsUnicode(to)
        let matches = try Row.fetchAll(
            db,
            sql: """
                SELECT id, state FROM contacts WHERE \(unicode ? "\(UnicodeLower.name)(ifnull(email, '')) = ?" : "ifnull(email, '') = ? COLLATE NOCASE")
                AND state != 'tombstoned' ORDER BY row_id LIMIT 6
                """, arguments: [unicode ? to.lowercased() : to])
        switch matches.count {
        case 0:
            throw OutboxError(
                .unknownRecipient, "no contact with email \(to) in the mirror", remedy: .createContact(email: to))
        case 1:
            return (matches[0]["id"], ContactState(rawValue: matches[0]["state"]) ?? .synced)
        default:
            let ids = matches.prefix(5).map { $0["id"] as String }.joined(separator: ", ")
            throw OutboxError(.ambiguousRecipient, "several contacts have email \(to) (\(ids)): give the id instead")
        }
    }

    /// The id a local id became once pushed, else the id itself.
    static func resolve(id: String, in db: Database) throws -> String {
        try String.fetchOne(db, sql: "SELECT id FROM contact_aliases WHERE alias = ?", arguments: [id]) ?? id
    }

    // MARK: Reading and managing the queue

    /// Entries in queue order, optionally only those in `states`, at most `limit` of them.
    package func outboxEntries(states: Set<OutboxState> = Set(OutboxState.allCases), limit: Int = .max) throws
        -> [OutboxEntry]
    {
        try writer.read { db in
            let names = states.map(\.rawValue).sorted()
            return try OutboxEntry.fetchAll(
                db,
                sql: """
                    SELECT \(OutboxEntry.columns) FROM outbox WHERE state IN (\(databaseQuestionMarks(count: names.count)))
                    ORDER BY seq LIMIT ?
                    """, arguments: StatementArguments(names) + [Int64(clamping: limit)])
        }
    }

    /// The entries of one contact (by Intercom or local id), in queue order.
    package func outboxEntries(ofContact contactID: String) throws -> [OutboxEntry] {
        let any = "SELECT 1 FROM outbox WHERE contact_id = ?1 OR contact_id IN (SELECT alias FROM contact_aliases WHERE id = ?1)"
        guard try anyRow(any, contact: contactID) else { return [] }
        return try writer.read { db in
            let id = try Self.resolve(id: contactID, in: db)
            return try OutboxEntry.fetchAll(
                db,
                sql: """
                    SELECT \(OutboxEntry.columns) FROM outbox
                    WHERE contact_id = ?1 OR contact_id IN (SELECT alias FROM contact_aliases WHERE id = ?1)
                    ORDER BY seq
                    """, arguments: [id])
        }
    }

    /// How many entries are in `states`.
    package func outboxCount(states: Set<OutboxState> = Set(OutboxState.allCases)) throws -> Int {
        try writer.read { db in
            let names = states.map(\.rawValue).sorted()
            return try Int.fetchOne(
                db,
                sql: "SELECT count(*) FROM outbox WHERE state IN (\(databaseQuestionMarks(count: names.count)))",
                arguments: StatementArguments(names)) ?? 0
        }
    }

    package func outboxEntry(seq: Int64) throws -> OutboxEntry? {
        try writer.read { db in try Self.entry(seq: seq, in: db) }
    }

    static func entry(seq: Int64, in db: Database) throws -> OutboxEntry? {
        try OutboxEntry.fetchOne(db, sql: "SELECT \(OutboxEntry.columns) FROM outbox WHERE seq = ?", arguments: [seq])
    }

    /// Puts a failed, unknown or deferred entry back in the queue for the next flush. A sent
    /// entry, or one a flush is sending, is refused.
    package func retryOutboxEntry(seq: Int64, now: Int) throws {
        try writer.write { db in
            guard let entry = try Self.entry(seq: seq, in: db) else {
                throw OutboxError(.noSuchEntry, "no outbox entry #\(seq)")
            }
            switch entry.state {
            case .sent:
                throw OutboxError(.wrongState, "entry #\(seq) was already sent (remote id \(entry.remoteID ?? "unknown"))")
            case .inFlight:
                throw OutboxError(
                    .wrongState,
                    "entry #\(seq) is being sent by a running flush, or was when one died: the next flush marks it unknown")
            case .conflict:
                throw OutboxError(
                    .wrongState, "entry #\(seq) is in conflict: choose which value to keep with `outbox resolve`")
            case .superseded:
                throw OutboxError(
                    .wrongState,
                    "entry #\(seq) needs nothing more (\(entry.lastError?.message ?? "superseded")): there is nothing to retry")
            case .pushed:
                throw OutboxError(
                    .wrongState,
                    "entry #\(seq) is in the team's outbox: a flush worker sends it, and `sync` brings back how it ended")
            case .pending, .failed, .unknown:
                try db.execute(
                    sql: "UPDATE outbox SET state = 'pending', next_attempt_at = NULL, updated_at = ? WHERE seq = ?",
                    arguments: [now, seq])
            }
        }
    }

    /// Re-queues every `unknown` entry; returns their sequence numbers.
    package func retryUnknownOutboxEntries(now: Int) throws -> [Int64] {
        try writer.write { db in
            let seqs = try Int64.fetchAll(db, sql: "SELECT seq FROM outbox WHERE state = 'unknown' ORDER BY seq")
            try db.execute(
                sql: "UPDATE outbox SET state = 'pending', next_attempt_at = NULL, updated_at = ? WHERE state = 'unknown'",
                arguments: [now])
            return seqs
        }
    }

    /// Removes an entry. Unsent entries that wait for it are refused unless `cascade`, which
    /// removes them too. Dropping an unsent create also removes its local contact.
    package func dropOutboxEntry(seq: Int64, cascade: Bool, now: Int = Int(Date().timeIntervalSince1970)) throws
        -> DroppedEntries
    {
        try writer.write { db in
            guard let entry = try Self.entry(seq: seq, in: db) else {
                throw OutboxError(.noSuchEntry, "no outbox entry #\(seq)")
            }
            guard entry.state != .inFlight else {
                throw OutboxError(.wrongState, "entry #\(seq) is being sent by a running flush; drop it after the flush")
            }
            let waiting = try Int64.fetchAll(
                db, sql: "SELECT seq FROM outbox WHERE depends_on = ? AND state != 'sent' ORDER BY seq", arguments: [seq])
            if !waiting.isEmpty && !cascade {
                let list = waiting.map { "#\($0)" }.joined(separator: ", ")
                throw OutboxError(
                    .hasDependents,
                    "\(list) wait\(waiting.count == 1 ? "s" : "") for entry #\(seq): drop \(waiting.count == 1 ? "it" : "them") "
                        + "first, or drop \(waiting.count == 1 ? "it" : "them") with it", remedy: .cascade)
            }
            try db.execute(sql: "UPDATE outbox SET depends_on = NULL WHERE depends_on = ? AND state = 'sent'", arguments: [seq])
            for dependent in waiting {
                try db.execute(sql: "DELETE FROM outbox WHERE seq = ?", arguments: [dependent])
            }
            try db.execute(sql: "DELETE FROM outbox WHERE seq = ?", arguments: [seq])
            var removed: String?
            // Dropping a contact's last open update entry drops its edits; while another entry
            // stands for them, they wait there.
            if entry.kind == .updateContact, entry.state != .sent, let id = entry.contactID,
                try Int.fetchOne(
                    db,
                    sql: """
                        SELECT count(*) FROM outbox WHERE contact_id = ? AND kind = 'update_contact'
                            AND state IN ('pending', 'in_flight', 'failed', 'conflict')
                        """, arguments: [id]) == 0
            {
                try Self.discardEdits(of: id, in: db)
            }
            if [.deleteContact, .archiveContact].contains(entry.kind), entry.state != .sent, let id = entry.contactID {
                try Self.undoDelete(of: id, now: now, in: db)
            }
            if entry.kind == .createContact, entry.state != .sent, let id = entry.contactID {
                try db.execute(sql: "DELETE FROM contacts WHERE id = ? AND state = 'pending'", arguments: [id])
                if db.changesCount > 0 { removed = id }
            }
            return DroppedEntries(seqs: [seq] + waiting, removedContactID: removed)
        }
    }

    // MARK: The flush's bookkeeping (each inside the caller's transaction)

    /// Settles entries a previous flush left `in_flight` (it died mid-request): a message or a
    /// note becomes `unknown` and is not re-sent; a create goes back to `pending`, since a repeated
    /// create is adopted through its 409, and so does a tagging, which Intercom applies once
    /// however often it is sent. Returns the messages marked unknown.
    static func recoverInterruptedEntries(now: Int, in db: Database) throws -> [Int64] {
        let messages = try Int64.fetchAll(
            db,
            sql: "SELECT seq FROM outbox WHERE state = 'in_flight' AND kind IN ('send_message', 'add_note') ORDER BY seq")
        try db.execute(
            sql: """
                UPDATE outbox SET state = 'unknown', updated_at = :now, last_error_status = NULL,
                    last_error_code = 'interrupted', last_error_request_id = NULL,
                    last_error_message = 'a flush stopped while sending this: it may or may not have reached Intercom'
                WHERE state = 'in_flight' AND kind IN ('send_message', 'add_note');
                UPDATE outbox SET state = 'pending', updated_at = :now
                WHERE state = 'in_flight' AND kind NOT IN ('send_message', 'add_note');
                """, arguments: ["now": now])
        return messages
    }

    /// Marks a pending entry `in_flight` before its request goes out; false if it is no longer
    /// pending (dropped or re-queued meanwhile).
    static func markInFlight(seq: Int64, now: Int, in db: Database) throws -> Bool {
        try db.execute(
            sql: """
                UPDATE outbox SET state = 'in_flight', attempts = attempts + 1, updated_at = ?
                WHERE seq = ? AND state = 'pending'
                """, arguments: [now, seq])
        return db.changesCount == 1
    }

    /// Records how an attempt ended.
    static func settle(
        seq: Int64, state: OutboxState, error: OutboxEntry.Failure? = nil, remoteID: String? = nil,
        nextAttemptAt: Int? = nil, now: Int, in db: Database
    ) throws {
        try db.execute(
            sql: """
                UPDATE outbox SET state = ?, remote_id = ifnull(?, remote_id), next_attempt_at = ?,
                    last_error_status = ?, last_error_code = ?, last_error_message = ?, last_error_request_id = ?,
                    updated_at = ?
                WHERE seq = ?
                """,
            arguments: [
                state.rawValue, remoteID, nextAttemptAt, error?.status, error?.code, error?.message, error?.requestID,
                now, seq,
            ])
    }

    /// A create reached Intercom as `contactJSON`: the local row gives way to the Intercom
    /// contact, the local id becomes an alias of its id, entries that point at the local id
    /// point at the new one, and the create is `sent`. One transaction (the guarantee that a pushed contact takes its Intercom id).
    static func completeCreate(seq: Int64, localID: String, contactJSON: String, now: Int, in db: Database) throws
        -> String
    {
        try db.execute(sql: "DELETE FROM contacts WHERE id = ? AND state = 'pending'", arguments: [localID])
        let id = try storeFetched(contactJSON, etag: nil, fetchedAt: now, in: db)
        try db.execute(
            sql: """
                INSERT INTO contact_aliases (alias, id) VALUES (?1, ?2)
                ON CONFLICT (alias) DO UPDATE SET id = excluded.id
                """, arguments: [localID, id])
        try db.execute(sql: "UPDATE outbox SET contact_id = ? WHERE contact_id = ?", arguments: [id, localID])
        try settle(seq: seq, state: .sent, remoteID: id, now: now, in: db)
        return id
    }
}

/// A small, fast pseudo-random generator (Steele, Lea and Flood's SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
