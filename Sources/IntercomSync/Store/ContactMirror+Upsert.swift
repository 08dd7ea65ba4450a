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
    public func upsertPages(_ pages: [String], fetchedAt: Int) throws -> PageUpsert {
        try writer.write { db in
            var total = PageUpsert(received: 0, written: 0)
            for page in pages {
                let result = try Self.upsertPage(page, fetchedAt: fetchedAt, in: db)
                total.received += result.received
                total.written += result.written
                total.nextCursor = result.nextCursor
                total.totalCount = result.totalCount
            }
            return total
        }
    }

    /// Stores one page inside the caller's transaction, so a pull can commit the page and the
    /// cursor that follows it together.
    ///
    /// SQLite parses the page: each contact's fields and its raw body come out of the JSON in C,
    /// which keeps bulk pulls far faster than decoding in Swift. A contact is written when it is
    /// new, when the page carries a newer `updated_at`, or (same `updated_at`) a different body;
    /// a contact in state `pending` is never overwritten, and a tombstone is revived only by a
    /// strictly newer version.
    public static func upsertPage(_ pageJSON: String, fetchedAt: Int, in db: Database) throws -> PageUpsert {
        let meta: Row
        do {
            meta = try Row.fetchOne(
                db,
                sql: """
                    SELECT ?1->>'$.type' AS type, json_type(?1, '$.data') AS dataType,
                           json_array_length(?1, '$.data') AS count,
                           ?1->>'$.pages.next.starting_after' AS next, ?1->>'$.total_count' AS total
                    """, arguments: [pageJSON])!
        } catch let error as DatabaseError {
            throw MirrorError(.malformedResponse, detail: "the page is not valid JSON (\(error.message ?? "parse error"))")
        }
        guard meta["type"] == "list", meta["dataType"] == "array" else {
            throw MirrorError(.malformedResponse, detail: "the page is not an Intercom list (no \"data\" array)")
        }
        let written = try upsertContacts(json: pageJSON, path: "$.data", fetchedAt: fetchedAt, in: db)
        return PageUpsert(
            received: meta["count"], written: written, nextCursor: meta["next"], totalCount: meta["total"])
    }

    /// Stores one contact body as Intercom sends it from `GET`/`POST`/`PUT /contacts`.
    @discardableResult
    public static func upsertContact(_ contactJSON: String, fetchedAt: Int, in db: Database) throws -> Bool {
        try upsertContacts(json: "[\(contactJSON)]", path: "$", fetchedAt: fetchedAt, in: db) > 0
    }

    private static func upsertContacts(json: String, path: String, fetchedAt: Int, in db: Database) throws -> Int {
        let statement = try db.cachedStatement(sql: upsertSQL)
        do {
            try statement.execute(arguments: [json, path, fetchedAt])
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw diagnose(json: json, path: path, in: db, sqliteError: error)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_ERROR {
            throw MirrorError(.malformedResponse, detail: "the response is not valid JSON (\(error.message ?? "parse error"))")
        }
        return db.changesCount
    }

    /// Finds which contact of a rejected batch is malformed, using the Swift decoder to say why.
    private static func diagnose(json: String, path: String, in db: Database, sqliteError: DatabaseError) -> MirrorError {
        let decoder = JSONDecoder()
        let elements = (try? Row.fetchAll(db, sql: "SELECT key, value FROM json_each(?, ?)", arguments: [json, path])) ?? []
        for element in elements {
            let text: String = element["value"] ?? "null"
            do {
                _ = try decoder.decode(Contact.self, from: Data(text.utf8))
            } catch {
                let position = (element["key"] as Int?).map { "contact #\($0 + 1)" } ?? "the contact"
                return MirrorError(.malformedResponse, detail: "\(position) is malformed: \(describe(error))")
            }
        }
        return MirrorError(.malformedResponse, detail: "a contact was refused by the mirror: \(sqliteError.message ?? "")")
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

    /// One statement for a whole batch: SQLite walks the JSON array with `json_each`.
    /// ?1 is the JSON text, ?2 the path of the array of contacts in it, ?3 the fetch time.
    /// (`WHERE true` resolves SQLite's parsing ambiguity between a join and the upsert clause.)
    private static let upsertSQL = """
        INSERT INTO contacts (
            id, external_id, role, email, phone, name, avatar, owner_id, custom_attributes,
            created_at, updated_at, body, fetched_at, validated_at, state)
        SELECT
            c.value->>'$.id', c.value->>'$.external_id', c.value->>'$.role',
            c.value->>'$.email', c.value->>'$.phone', c.value->>'$.name',
            CASE json_type(c.value, '$.avatar')
                WHEN 'object' THEN c.value->>'$.avatar.image_url'
                WHEN 'text' THEN c.value->>'$.avatar'
            END,
            c.value->>'$.owner_id',
            CASE json_type(c.value, '$.custom_attributes')
                WHEN 'object' THEN c.value->'$.custom_attributes' ELSE '{}'
            END,
            c.value->>'$.created_at', c.value->>'$.updated_at', c.value, ?3, ?3, 'synced'
        FROM json_each(?1, ?2) AS c
        WHERE true
        ON CONFLICT (id) DO UPDATE SET
            external_id = excluded.external_id, role = excluded.role, email = excluded.email,
            phone = excluded.phone, name = excluded.name, avatar = excluded.avatar,
            owner_id = excluded.owner_id, custom_attributes = excluded.custom_attributes,
            created_at = excluded.created_at, updated_at = excluded.updated_at, body = excluded.body,
            etag = NULL, fetched_at = excluded.fetched_at, validated_at = excluded.validated_at, state = 'synced'
        WHERE contacts.state != 'pending'
            AND (excluded.updated_at > contacts.updated_at
                OR (contacts.state = 'synced' AND excluded.updated_at = contacts.updated_at
                    AND excluded.body != contacts.body))
        """
}
