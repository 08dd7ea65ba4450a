import Foundation
import GRDB

/// What storing one Intercom list or search page did.
public struct PageUpsert: Sendable, Equatable {
    /// Contacts in the page's `data` array.
    public var received: Int
    /// Contacts inserted or replaced by a newer version (pending and stale ones are left alone).
    public var written: Int
    /// `pages.next.starting_after`: the cursor of the next page, nil on the last one.
    public var nextCursor: String?
    /// `total_count`, when the page carries it.
    public var totalCount: Int?

    public init(received: Int, written: Int, nextCursor: String? = nil, totalCount: Int? = nil) {
        self.received = received
        self.written = written
        self.nextCursor = nextCursor
        self.totalCount = totalCount
    }
}

extension ContactMirror {
    /// Stores an Intercom list or search page (`{"type":"list","data":[contact…],"pages":…}`)
    /// in one transaction.
    public func upsertPage(_ pageJSON: String, fetchedAt: Int) throws -> PageUpsert {
        try writer.write { db in try Self.upsertPage(pageJSON, fetchedAt: fetchedAt, in: db) }
    }

    /// Stores several pages in one transaction: the bulk path (generators, imports of exports).
    /// Each page commit writes every index page it touches, so batching pages is much cheaper.
    /// The pages are taken apart on other threads, every core, while this one writes them in
    /// order: reading the JSON was a third of the work.
    public func upsertPages(_ pages: [String], fetchedAt: Int) throws -> PageUpsert {
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
    public static func upsertPage(_ pageJSON: String, fetchedAt: Int, in db: Database) throws -> PageUpsert {
        let page = try ScannedPage(pageJSON)
        let written = try upsert(page.contacts, fetchedAt: fetchedAt, in: db)
        return PageUpsert(
            received: page.contacts.count, written: written, nextCursor: page.nextCursor, totalCount: page.totalCount)
    }

    /// Stores one contact body as Intercom sends it from `GET`/`POST`/`PUT /contacts`.
    @discardableResult
    public static func upsertContact(_ contactJSON: String, fetchedAt: Int, in db: Database) throws -> Bool {
        try upsert([ScannedContact.read(contactJSON)], fetchedAt: fetchedAt, in: db) > 0
    }

    /// Stores contacts already read from a page (`ScannedPage`), inside the caller's transaction.
    static func upsert(page: ScannedPage, fetchedAt: Int, in db: Database) throws -> Int {
        try upsert(page.contacts, fetchedAt: fetchedAt, in: db)
    }

    /// Writes a batch through one prepared statement, its new rows indexed at the end.
    /// Bodies are compressed with the mirror's newest dictionary (`BodyDictionaries`), which a
    /// batch may train first or again after it.
    static func upsert(_ contacts: [ScannedContact], fetchedAt: Int, in db: Database) throws -> Int {
        let compressor = try BodyDictionaries.current(in: db)
        let written = try indexingFTSAtEnd(in: db) {
            var written = 0
            let statement = RawBinding(try db.cachedStatement(sql: upsertSQL))
            for (position, contact) in newestVersions(of: contacts) {
                try contact.bind(to: statement, fetchedAt: fetchedAt, compressor: compressor)
                do {
                    written += try statement.execute(in: db)
                } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                    throw diagnose(contact, position: position, count: contacts.count, sqliteError: error)
                }
            }
            return written
        }
        if try BodyDictionaries.trainingIsDue(
            after: compressor, plainBodies: compressor.dictionaryID == 0 ? written : 0, in: db)
        {
            try BodyDictionaries.train(in: db, now: fetchedAt)
        }
        return written
    }

    /// The batch with each contact once, at its newest version (the later one on a tie), with its
    /// position in the page. Writing one contact twice in a batch would update a row the FTS index
    /// has not received yet, and its update trigger would then delete terms the index never had.
    static func newestVersions(of contacts: [ScannedContact]) -> [(position: Int, contact: ScannedContact)] {
        let all = Array(contacts.enumerated()).map { (position: $0.offset, contact: $0.element) }
        var ids = Set<String>()
        guard contacts.contains(where: { $0.id.map { !ids.insert($0).inserted } ?? false }) else { return all }
        var newest: [String: Int] = [:]
        for (position, contact) in contacts.enumerated() {
            guard let id = contact.id else { continue }
            if let kept = newest[id], (contacts[kept].updatedAt ?? .min) > (contact.updatedAt ?? .min) { continue }
            newest[id] = position
        }
        return all.filter { item in item.contact.id.map { newest[$0] == item.position } ?? true }
    }

    /// Says which contact the mirror refused and why, using the Swift decoder for the why.
    private static func diagnose(_ contact: ScannedContact, position: Int, count: Int, sqliteError: DatabaseError) -> MirrorError
    {
        let subject = count > 1 ? "contact #\(position + 1)" : "the contact"
        do {
            _ = try JSONDecoder().decode(Contact.self, from: Data(contact.body.utf8))
        } catch {
            return MirrorError(.malformedResponse, detail: "\(subject) is malformed: \(describe(error))")
        }
        return MirrorError(.malformedResponse, detail: "\(subject) was refused by the mirror: \(sqliteError.message ?? "")")
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _):
            return "the field \"\(key.stringValue)\" is missing"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
            DecodingError.dataCorrupted(let context):
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            return field.isEmpty ? context.debugDescription : "\"\(field)\": \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }

    /// ?1…?12 are the contact's columns (`ScannedContact.bind`), ?13 the fetch time. Bodies
    /// compressed under different dictionaries differ as bytes, so an equal `updated_at` compares
    /// their texts before the write counts.
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
        WHERE CASE contacts.state
            WHEN 'pending' THEN 0
            WHEN 'tombstoned' THEN excluded.fetched_at > ifnull(contacts.validated_at, 0)
            ELSE excluded.updated_at > contacts.updated_at
                OR (excluded.updated_at = contacts.updated_at AND excluded.body != contacts.body
                    AND contact_body(excluded.body) != contact_body(contacts.body))
            END
        """
}
