import Foundation
import GRDB
import GRDBSQLite

/// What storing one Intercom list or search page did.
package struct PageUpsert: Sendable, Equatable {
    /// Contacts in the page's `data` array.
    package var received: Int
    /// Contacts inserted or replaced by a newer version (pending and stale ones are left alone).
    package var written: Int
    /// `pages.next.starting_after`: the cursor of the next page, nil on the last one.
    package var nextCursor: String?
    /// `total_count`, when the page carries it.
    package var totalCount: Int?

    package init(received: Int, written: Int, nextCursor: String? = nil, totalCount: Int? = nil) {
        self.received = received
        self.written = written
        self.nextCursor = nextCursor
        self.totalCount = totalCount
    }
}

extension ContactMirror {
    /// Stores an Intercom list or search page (`{"type":"list","data":[contact…],"pages":…}`)
    /// in one transaction.
    package func upsertPage(_ pageJSON: String, fetchedAt: Int) throws -> PageUpsert {
        try writer.write { db in try Self.upsertPage(pageJSON, fetchedAt: fetchedAt, in: db) }
    }

    /// Stores several pages in one transaction: the bulk path (generators, imports of exports).
    /// Each page commit writes every index page it touches, so batching pages is much cheaper.
    /// The pages are taken apart on other threads, every core, while this one writes them in
    /// order: reading the JSON was a third of the work.
    package func upsertPages(_ pages: [String], fetchedAt: Int) throws -> PageUpsert {
        let scanned = ScannedPages(pages, compressor: try? writer.read { db in try BodyDictionaries.current(in: db) })
        return try writer.write { db in
            var total = PageUpsert(received: 0, written: 0)
            for index in pages.indices {
                let page = try scanned.page(index)
                total.received += page.contacts.count
                total.written += try Self.upsert(page: page, fetchedAt: fetchedAt, in: db)
                total.nextCursor = page.nextCursor
                total.totalCount = page.totalCount
            }
            return total
        }
    }

    /// Stores one page inside the caller's transaction, so a pull can commit the page and the
    /// cursor that follows it together.
    ///
    /// The page is read in one pass (`JSONReader`): each contact's indexed fields come out, and
    /// its raw bytes are kept as its body. A contact is written when it is new, when the page
    /// carries a newer `updated_at`, or (same `updated_at`) a different body; a contact in state
    /// `pending` is never overwritten, and a tombstone is revived only by an answer fetched after
    /// the contact was found gone (a stale page does not resurrect it).
    /// A malformed contact rejects the whole page.
    package static func upsertPage(_ pageJSON: String, fetchedAt: Int, in db: Database) throws -> PageUpsert {
        let page = try ScannedPage(pageJSON)
        let written = try upsert(page.contacts, fetchedAt: fetchedAt, in: db)
        return PageUpsert(
            received: page.contacts.count, written: written, nextCursor: page.nextCursor, totalCount: page.totalCount)
    }

    /// Stores one contact body as Intercom sends it from `GET`/`POST`/`PUT /contacts`.
    @discardableResult
    package static func upsertContact(_ contactJSON: String, fetchedAt: Int, in db: Database) throws -> Bool {
        try upsert([ScannedContact.read(contactJSON)], fetchedAt: fetchedAt, in: db) > 0
    }

    /// Stores contacts already read from a page (`ScannedPage`), inside the caller's transaction.
    /// With `malformed`, a contact the mirror cannot store is noted there and left out, and the
    /// rest are stored; without, it fails the whole batch.
    static func upsert(
        page: ScannedPage, fetchedAt: Int, skipping malformed: MalformedContacts? = nil, in db: Database
    ) throws -> Int {
        try upsert(page.contacts, fetchedAt: fetchedAt, skipping: malformed, in: db)
    }

    /// Writes a batch through one prepared statement, its new rows indexed at the end.
    /// Bodies are compressed with the mirror's newest dictionary (`BodyDictionaries`), which a
    /// batch may train first or again after it.
    static func upsert(
        _ contacts: [ScannedContact], fetchedAt: Int, skipping malformed: MalformedContacts? = nil, in db: Database
    ) throws -> Int {
        let compressor = try BodyDictionaries.current(in: db)
        let written = try indexingFTSAtEnd(in: db) {
            var written = 0
            let upsert = RawBinding(try db.cachedStatement(sql: upsertSQL))
            let lookup = RawBinding(try db.cachedStatement(sql: lookupSQL))
            let insert = RawBinding(try db.cachedStatement(sql: insertSQL))
            let links = try LinkWriter(in: db)
            // Each dictionary is read once in the batch's transaction, not once a stored body.
            let dictionaries = BodyFunctions.ConnectionDictionaries()
            // Contacts with offline edits get them laid over the version just stored.
            let editsPending = try hasPendingEdits(in: db)
            var rewritten: [String] = []
            var updates: [String: RawBinding] = [:]
            // A contact whose delete waits to be sent stays deleted in the mirror.
            let beingDeleted = try contactsBeingDeleted(among: contacts, in: db)
            for position in newestVersions(of: contacts) {
                let contact = contacts[position]
                if !beingDeleted.isEmpty, let id = contact.id, beingDeleted.contains(id) { continue }
                func run(_ statement: RawBinding) throws -> Int {
                    do {
                        return try statement.execute(in: db)
                    } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                        // The failed statement alone is undone: the transaction goes on.
                        guard let malformed else {
                            throw diagnose(contact, position: position, count: contacts.count, sqliteError: error)
                        }
                        let problem = problem(of: contact, sqliteError: error)
                        malformed.note(
                            MalformedContact(
                                id: contact.id, reason: contact.id == nil ? "contact #\(position + 1): \(problem)" : problem))
                        return 0
                    }
                }
                let values = contact.columnValues
                var write = PlannedWrite.upsert
                if Self.isWellFormed(values) {
                    // Most contacts of a first pull are new: one insert finds out.
                    try contact.bind(to: insert, fetchedAt: fetchedAt, compressor: compressor)
                    if try run(insert) == 1 {
                        written += 1
                        if editsPending, let id = contact.id { rewritten.append(id) }
                        if contact.hasLinks, case .int(let updatedAt) = values[10] {
                            try links.write(
                                contact, rowID: db.lastInsertedRowID, updatedAt: updatedAt, fresh: true, in: db)
                        }
                        continue
                    }
                    write = try plannedWrite(
                        of: contact, values: values, fetchedAt: fetchedAt, lookup: lookup, dictionaries: dictionaries,
                        in: db)
                }
                let statement: RawBinding
                var updatedRow: Int64?
                switch write {
                case .none: continue
                case .upsert: statement = upsert
                case .update(let rowID, let changed, let revives):
                    let sql = updateSQL(changed, revives: revives)
                    statement = try updates[sql] ?? RawBinding(try db.cachedStatement(sql: sql))
                    updates[sql] = statement
                    statement.bind(14, rowID)
                    updatedRow = rowID
                }
                try contact.bind(to: statement, fetchedAt: fetchedAt, compressor: compressor)
                let changes = try run(statement)
                written += changes
                if editsPending, changes > 0, let id = contact.id { rewritten.append(id) }
                if changes > 0, contact.hasLinks {
                    if let updatedRow, case .int(let updatedAt) = values[10] {
                        // An update of a well-formed contact: its row and time are known.
                        try links.write(contact, rowID: updatedRow, updatedAt: updatedAt, fresh: false, in: db)
                    } else {
                        try relink(contact, links: links, in: db)
                    }
                }
            }
            if !rewritten.isEmpty { try reapplyEdits(to: rewritten, in: db) }
            return written
        }
        if try BodyDictionaries.trainingIsDue(
            after: compressor, plainBodies: compressor.dictionaryID == 0 ? written : 0, in: db)
        {
            // A dictionary zstd cannot train (bodies too few or too alike) is judged again after
            // as many bodies more, not at every batch.
            if try BodyDictionaries.train(in: db, now: fetchedAt) == nil { compressor.resetTally() }
        }
        return written
    }

    /// Replaces the links of a contact the upsert statement just wrote with those its body
    /// lists, its row looked up by the contact's id.
    private static func relink(_ contact: ScannedContact, links: LinkWriter, in db: Database) throws {
        guard let id = contact.id,
            let row = try Row.fetchOne(
                db, sql: "SELECT row_id, updated_at FROM contacts WHERE id = ? AND state = 'synced'", arguments: [id])
        else { return }
        try links.write(contact, rowID: row[0], updatedAt: row[1], fresh: false, in: db)
    }

    /// How a contact already stored (or malformed) reaches the mirror: not at all, through the
    /// upsert statement (values the table's constraints must judge), or by an update of the
    /// columns whose values changed. An update that sets every column rewrites every index
    /// entry of the row, changed or not: an incremental pull mostly brings a new `updated_at` and
    /// body, and writing only those took a page of 150 into a mirror of 1M from 63 to 32 ms.
    enum PlannedWrite: Equatable {
        case none
        case upsert
        /// `changed`: positions in `ScannedContact.columns`; `revives`: a tombstone comes back.
        case update(rowID: Int64, changed: [Int], revives: Bool)
    }

    /// Whether the values are what the table's constraints accept (an id, a role, integer
    /// times): others go through `upsertSQL`, whose failure `diagnose` explains.
    static func isWellFormed(_ values: [ScannedContact.ColumnValue]) -> Bool {
        guard case .text = values[0], case .int = values[10], case .int = values[9], case .text(let role) = values[2]
        else { return false }
        return role == "user" || role == "lead"
    }

    /// The rules of `upsertSQL`, decided here for a well-formed contact already stored: a
    /// pending contact is never overwritten; a tombstone is revived by an answer fetched after it
    /// was found gone; a synced contact takes a newer `updated_at`, or at the same one a
    /// different body.
    static func plannedWrite(
        of contact: ScannedContact, values: [ScannedContact.ColumnValue], fetchedAt: Int, lookup: RawBinding,
        dictionaries: BodyFunctions.ConnectionDictionaries, in db: Database
    ) throws -> PlannedWrite {
        guard case .text(let id) = values[0], case .int(let updatedAt) = values[10] else { return .upsert }
        lookup.bind(1, id)
        let planned = try lookup.firstRow(in: db) { row -> PlannedWrite in
            let state = row.text(1)
            switch state {
            case "tombstoned":
                guard Int64(fetchedAt) > row.int64(2) ?? 0 else { return .none }
            case "synced":
                let storedUpdatedAt = row.int64(13) ?? .min
                guard updatedAt >= storedUpdatedAt else { return .none }
                if updatedAt == storedUpdatedAt,
                    try storedBody(row, column: 14, in: db, dictionaries: dictionaries) == contact.body
                {
                    return .none
                }
            default:
                return .none
            }
            let changed = (1..<values.count).filter { row.value(Int32($0 + 2)) != values[$0] }
            return .update(rowID: row.int64(0) ?? 0, changed: changed, revives: state != "synced")
        }
        return planned ?? .upsert
    }

    /// The text of the body in `column` of `row`, decompressed if need be (with `dictionaries`,
    /// which live within the caller's transaction).
    private static func storedBody(
        _ row: RawRow, column: Int32, in db: Database, dictionaries: BodyFunctions.ConnectionDictionaries
    ) throws -> String? {
        guard row.isBlob(column) else { return row.text(column) }
        let (pointer, count) = try BodyFunctions.unpack(
            row.blob(column), on: db.sqliteConnection, cache: dictionaries, withinOneTransaction: true)
        defer { sqlite3_free(pointer) }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    /// The stored row of ?1: row_id, state and validated_at, then `ScannedContact.columns`
    /// from external_id on (columns 3…12), updated_at again (13) and the body (14).
    private static let lookupSQL = """
        SELECT row_id, state, validated_at, \(ScannedContact.columns.dropFirst().joined(separator: ", ")), updated_at, body
        FROM contacts WHERE id = ?1
        """

    /// An update of the changed columns (bound at their upsert positions), the body, the fetch
    /// time and, for a tombstone, the state, of row ?14.
    private static func updateSQL(_ changed: [Int], revives: Bool) -> String {
        var assignments = changed.map { "\(ScannedContact.columns[$0]) = ?\($0 + 1)" }
        assignments += ["body = ?12", "etag = NULL", "fetched_at = ?13", "validated_at = ?13"]
        if revives { assignments.append("state = 'synced'") }
        return "UPDATE contacts SET \(assignments.joined(separator: ", ")) WHERE row_id = ?14"
    }

    /// The positions in the batch of each contact's newest version (the later one on a tie),
    /// each contact once. Writing one contact twice in a batch would update a row the FTS index
    /// has not received yet, and its update trigger would then delete terms the index never had.
    /// Positions, not contacts: a copy of a contact retains each of its parts.
    static func newestVersions(of contacts: [ScannedContact]) -> [Int] {
        var ids = Set<String>()
        guard contacts.contains(where: { $0.id.map { !ids.insert($0).inserted } ?? false }) else {
            return Array(contacts.indices)
        }
        var newest: [String: Int] = [:]
        for position in contacts.indices {
            guard let id = contacts[position].id else { continue }
            if let kept = newest[id], (contacts[kept].updatedAt ?? .min) > (contacts[position].updatedAt ?? .min) {
                continue
            }
            newest[id] = position
        }
        return contacts.indices.filter { position in contacts[position].id.map { newest[$0] == position } ?? true }
    }

    /// Says which contact the mirror refused and why, using the Swift decoder for the why.
    private static func diagnose(_ contact: ScannedContact, position: Int, count: Int, sqliteError: DatabaseError) -> MirrorError
    {
        let subject = count > 1 ? "contact #\(position + 1)" : "the contact"
        return MirrorError(.malformedResponse, detail: "\(subject) \(problem(of: contact, sqliteError: sqliteError))")
    }

    /// What is wrong with a contact the mirror refused: "is malformed: …" with the field the
    /// Swift decoder names, or what SQLite said.
    private static func problem(of contact: ScannedContact, sqliteError: DatabaseError) -> String {
        // The table's own rules first, by the values as they came: the decoder only says "not
        // valid JSON" of valid JSON whose number is not a whole one.
        let values = contact.columnValues
        for (position, field) in [(9, "created_at"), (10, "updated_at")] {
            switch values[position] {
            case .double(let number): return "is malformed: \"\(field)\": \(number) is not a whole number of seconds"
            case .text(let text): return "is malformed: \"\(field)\": \"\(text)\" is not a number of seconds"
            default: break
            }
        }
        do {
            _ = try JSONDecoder().decode(Contact.self, from: Data(contact.body.utf8))
        } catch {
            return "is malformed: \(describe(error))"
        }
        return "was refused by the mirror: \(sqliteError.message ?? "")"
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _):
            return "the field \"\(key.stringValue)\" is missing"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
            DecodingError.dataCorrupted(let context):
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            var why = context.debugDescription
            if let range = why.range(of: #"from invalid \w+ value "#, options: .regularExpression),
                why.hasPrefix("Cannot initialize ")
            {
                // "Cannot initialize ContactRole from invalid String value admin": name the value, not the type.
                why = "\"\(why[range.upperBound...])\" is not one of the values it takes"
            } else if let underlying = context.underlyingError as NSError?,
                let detail = underlying.userInfo[NSDebugDescriptionErrorKey] as? String
            {
                // Valid JSON whose number no Swift integer holds: say that, not "not valid JSON".
                why = detail
            }
            return field.isEmpty ? why : "\"\(field)\": \(why)"
        default:
            return "\(error)"
        }
    }

    /// `upsertSQL` for a contact not stored yet; one that is is left alone (no change).
    private static let insertSQL = """
        INSERT INTO contacts (
            id, external_id, role, email, phone, name, avatar, owner_id, custom_attributes,
            created_at, updated_at, body, fetched_at, validated_at, state)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13, 'synced')
        ON CONFLICT (id) DO NOTHING
        """

    /// ?1…?12 are the contact's columns (`ScannedContact.bind`), ?13 the fetch time. Bodies
    /// compressed under different dictionaries differ as bytes, so an equal `updated_at` compares
    /// their texts before the write counts. A pending contact matches neither branch. The
    /// condition is a WHERE of ANDs and ORs, which SQLite evaluates lazily: inside a CASE it
    /// evaluated every operand, decompressing both bodies of every update.
    private static let upsertSQL = """
        INSERT INTO contacts (
            id, external_id, role, email, phone, name, avatar, owner_id, custom_attributes,
            created_at, updated_at, body, fetched_at, validated_at, state)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13, 'synced')
        ON CONFLICT (id) DO UPDATE SET
            external_id = excluded.external_id, role = excluded.role, email = excluded.email,
            phone = excluded.phone, name = excluded.name, avatar = excluded.avatar,
            owner_id = excluded.owner_id, custom_attributes = excluded.custom_attributes,
            created_at = excluded.created_at, updated_at = excluded.updated_at, body = excluded.body,
            etag = NULL, fetched_at = excluded.fetched_at, validated_at = excluded.validated_at, state = 'synced'
        WHERE (contacts.state = 'tombstoned' AND excluded.fetched_at > ifnull(contacts.validated_at, 0))
            OR (contacts.state = 'synced' AND (excluded.updated_at > contacts.updated_at
                OR (excluded.updated_at = contacts.updated_at AND excluded.body != contacts.body
                    AND contact_body(excluded.body) != contact_body(contacts.body))))
        """
}

/// The contacts a batch left out because the mirror cannot store them.
final class MalformedContacts {
    private(set) var contacts: [MalformedContact] = []

    func note(_ contact: MalformedContact) { contacts.append(contact) }
}
