import Foundation
import GRDB

/// Writes a contact's links as its body lists them, through statements prepared once a batch.
///
/// A body that lists every tag (or company) of the contact replaces the contact's links of that
/// kind. One that lists only some (`LinkList.complete` false) replaces them with those, and puts
/// the contact in `link_followups`: a sync then reads the whole list and replaces them again.
struct LinkWriter {
    private let deletes: [RawBinding]
    private let insert: RawBinding
    private let follow: RawBinding
    private let unfollow: RawBinding
    /// Whether taggings wait in the outbox, which a contact's new links must not hide.
    private let taggingsQueued: Bool
    /// Whether a bulk load defers its indexes: links then go to `contact_links_loading`, in
    /// row order, and reach `contact_links` sorted at the load's end (`mergeLoadedLinks`).
    private let loading: Bool

    init(in db: Database) throws {
        taggingsQueued = try ContactMirror.hasQueuedTaggings(in: db)
        loading = try ContactMirror.syncState(.indexesDeferred, in: db) != nil
        var deletes = [
            RawBinding(try db.cachedStatement(sql: "DELETE FROM contact_links WHERE contact_row = ?1 AND kind = ?2"))
        ]
        if loading {
            deletes.append(
                RawBinding(
                    try db.cachedStatement(sql: "DELETE FROM contact_links_loading WHERE contact_row = ?1 AND kind = ?2")))
        }
        self.deletes = deletes
        insert = RawBinding(
            try db.cachedStatement(
                sql: loading
                    ? "INSERT OR IGNORE INTO contact_links_loading (kind, target, contact_row) VALUES (?1, ?2, ?3)"
                    : "INSERT OR IGNORE INTO contact_links (kind, target, contact_row, contact_updated_at) VALUES (?1, ?2, ?3, ?4)"
            ))
        follow = RawBinding(
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO link_followups (contact_row, kind) VALUES (?1, ?2)"))
        unfollow = RawBinding(
            try db.cachedStatement(sql: "DELETE FROM link_followups WHERE contact_row = ?1 AND kind = ?2"))
    }

    /// Writes the links `contact`'s body lists. `fresh`: the row was just inserted, so it has
    /// none to replace.
    func write(_ contact: ScannedContact, rowID: Int64, updatedAt: Int64, fresh: Bool, in db: Database) throws {
        if let tags = contact.tags {
            try replace(.tag, ids: tags.ids, complete: tags.complete, rowID: rowID, updatedAt: updatedAt, fresh: fresh, in: db)
            if taggingsQueued { try ContactMirror.reapplyQueuedTaggings(rowID: rowID, updatedAt: updatedAt, in: db) }
        }
        if let companies = contact.companies {
            try replace(
                .company, ids: companies.ids, complete: companies.complete, rowID: rowID, updatedAt: updatedAt,
                fresh: fresh, in: db)
        }
    }

    /// Replaces the contact's links of one kind with `ids`; `complete` false queues it for the rest.
    func replace(
        _ kind: LinkKind, ids: [String], complete: Bool, rowID: Int64, updatedAt: Int64, fresh: Bool = false,
        in db: Database
    ) throws {
        let kindValue = Int64(kind.rawValue)
        if !fresh {
            for delete in deletes {
                delete.bind(1, rowID)
                delete.bind(2, kindValue)
                _ = try delete.execute(in: db)
            }
        }
        for id in ids {
            insert.bind(1, kindValue)
            insert.bind(2, id)
            insert.bind(3, rowID)
            if !loading { insert.bind(4, updatedAt) }
            _ = try insert.execute(in: db)
        }
        if !complete {
            follow.bind(1, rowID)
            follow.bind(2, kindValue)
            _ = try follow.execute(in: db)
        } else if !fresh {
            unfollow.bind(1, rowID)
            unfollow.bind(2, kindValue)
            _ = try unfollow.execute(in: db)
        }
    }
}

/// How names of tags, segments and companies are compared: with their case folded, by
/// Unicode's rules (`Ünïcode` is `ünïcode`), where SQLite's NOCASE folds only ASCII.
enum LinkName {
    static func key(_ name: String) -> String {
        name.folding(options: .caseInsensitive, locale: nil)
    }
}

/// A tag of the workspace, with how many contacts of the mirror carry it.
public struct TagSummary: Sendable, Equatable, Identifiable, Codable {
    public var id: String
    public var name: String
    public var contacts: Int

    public init(id: String, name: String, contacts: Int) {
        self.id = id
        self.name = name
        self.contacts = contacts
    }
}

/// A segment of the workspace, with how many contacts of the mirror are in it.
public struct SegmentSummary: Sendable, Equatable, Identifiable, Codable {
    public var id: String
    public var name: String
    public var personType: String?
    public var contacts: Int

    public init(id: String, name: String, personType: String? = nil, contacts: Int) {
        self.id = id
        self.name = name
        self.personType = personType
        self.contacts = contacts
    }

    /// Snake case, as Intercom and every other JSON this tool writes.
    enum CodingKeys: String, CodingKey {
        case id, name, contacts
        case personType = "person_type"
    }
}

/// A company of the workspace, its fields people filter on, and how many contacts of the
/// mirror belong to it.
public struct CompanySummary: Sendable, Equatable, Identifiable, Codable {
    public var id: String
    /// The id the workspace gave it (`company_id`).
    public var companyID: String?
    public var name: String?
    public var plan: String?
    public var size: Int?
    public var industry: String?
    public var website: String?
    public var monthlySpend: Double?
    public var contacts: Int

    public init(
        id: String, companyID: String? = nil, name: String? = nil, plan: String? = nil, size: Int? = nil,
        industry: String? = nil, website: String? = nil, monthlySpend: Double? = nil, contacts: Int = 0
    ) {
        self.id = id
        self.companyID = companyID
        self.name = name
        self.plan = plan
        self.size = size
        self.industry = industry
        self.website = website
        self.monthlySpend = monthlySpend
        self.contacts = contacts
    }

    /// Snake case, as Intercom and every other JSON this tool writes.
    enum CodingKeys: String, CodingKey {
        case id, name, plan, size, industry, website, contacts
        case companyID = "company_id"
        case monthlySpend = "monthly_spend"
    }
}

/// The names of the tags, companies and segments a contact is linked to.
public struct ContactLinks: Sendable, Equatable, Codable {
    public var tags: [String]
    public var companies: [String]
    public var segments: [String]

    public init(tags: [String] = [], companies: [String] = [], segments: [String] = []) {
        self.tags = tags
        self.companies = companies
        self.segments = segments
    }
}

/// A company as the list endpoints send it, taken apart for the `companies` table.
package struct CompanyRecord: Sendable, Equatable {
    var id: String
    var companyID: String?
    var name: String?
    var plan: String?
    var size: Int64?
    var industry: String?
    var website: String?
    var monthlySpend: Double?
    var userCount: Int64?
    var createdAt: Int64?
    var updatedAt: Int64?
    var body: String

    /// Reads one company object; nil when it has no id.
    package init?(_ value: JSONValue) {
        guard case .object(let fields) = value, let id = fields["id"]?.string ?? fields["id"]?.int.map(String.init)
        else { return nil }
        self.id = id
        companyID = fields["company_id"]?.string
        name = fields["name"]?.string
        if case .object(let plan)? = fields["plan"] { self.plan = plan["name"]?.string } else { plan = fields["plan"]?.string }
        size = fields["size"]?.int.map(Int64.init)
        industry = fields["industry"]?.string
        website = fields["website"]?.string
        switch fields["monthly_spend"] {
        case .int(let spend)?: monthlySpend = Double(spend)
        case .double(let spend)?: monthlySpend = spend
        default: monthlySpend = nil
        }
        userCount = fields["user_count"]?.int.map(Int64.init)
        createdAt = fields["created_at"]?.int.map(Int64.init)
        updatedAt = fields["updated_at"]?.int.map(Int64.init)
        body = value.jsonText
    }
}

extension ContactMirror {
    /// Makes the workspace's tags exactly `tags` (id, name): new ones added, renamed ones
    /// renamed, and the ones Intercom no longer has removed with their links.
    package static func replaceTags(_ tags: [(id: String, name: String)], in db: Database) throws {
        try replaceNamed(table: "tags", kind: .tag, tags.map { ($0.id, $0.name, [] as [DatabaseValue]) }, in: db)
        try adoptLocalTags(in: db)
    }

    /// Whether a contact links to a tag the mirror has no name for (not a placeholder of a tag
    /// made offline): a tag made on Intercom after its list was read. One seek a tag linked.
    static func linksToUnnamedTags(in db: Database) throws -> Bool {
        let named = Set(try String.fetchAll(db, sql: "SELECT id FROM tags"))
        let next = try db.cachedStatement(
            sql: "SELECT target FROM contact_links WHERE kind = ? AND target > ? ORDER BY target LIMIT 1")
        var after = ""
        while let target = try String.fetchOne(next, arguments: [LinkKind.tag.rawValue, after]) {
            if !named.contains(target) && !target.hasPrefix("local:") { return true }
            after = target
        }
        return false
    }

    /// `replaceTags` for segments: (id, name, person type, created_at, updated_at).
    static func replaceSegments(
        _ segments: [(id: String, name: String, personType: String?, createdAt: Int?, updatedAt: Int?)], in db: Database
    ) throws {
        try replaceNamed(
            table: "segments", kind: .segment,
            segments.map {
                ($0.id, $0.name, [$0.personType.databaseValue, $0.createdAt.databaseValue, $0.updatedAt.databaseValue])
            }, extraColumns: ["person_type", "created_at", "updated_at"], in: db)
    }

    private static func replaceNamed(
        table: String, kind: LinkKind, _ rows: [(id: String, name: String, extra: [DatabaseValue])],
        extraColumns: [String] = [], in db: Database
    ) throws {
        let columns = ["id", "name", "name_key"] + extraColumns
        let placeholders = Array(repeating: "?", count: columns.count).joined(separator: ", ")
        let updates = columns.dropFirst().map { "\($0) = excluded.\($0)" }.joined(separator: ", ")
        let statement = try db.cachedStatement(
            sql: "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES (\(placeholders)) "
                + "ON CONFLICT (id) DO UPDATE SET \(updates)")
        for row in rows {
            try statement.execute(
                arguments: StatementArguments(
                    [row.id.databaseValue, row.name.databaseValue, LinkName.key(row.name).databaseValue] + row.extra))
        }
        try removeMissing(table: table, kind: kind, keeping: rows.map(\.id), in: db)
    }

    /// Deletes the rows of `table` whose id is not in `ids`, and the links to them.
    private static func removeMissing(table: String, kind: LinkKind, keeping ids: [String], in db: Database) throws {
        let kept = Set(ids)
        // Placeholders of tags made offline are not Intercom's to list (`adoptLocalTags`).
        let gone = try String.fetchAll(db, sql: "SELECT id FROM \(table) WHERE id NOT LIKE 'local:%'")
            .filter { !kept.contains($0) }
        for id in gone {
            try db.execute(sql: "DELETE FROM contact_links WHERE kind = ? AND target = ?", arguments: [kind.rawValue, id])
            try db.execute(sql: "DELETE FROM \(table) WHERE id = ?", arguments: [id])
        }
    }

    /// Stores companies as the list endpoints send them (inserted, or replacing the stored
    /// one); after a listing of every company (`listingEvery`), removes the ones it did not
    /// list, with their links. The index of their names is written anew once, at the end.
    package static func storeCompanies(_ companies: [CompanyRecord], listingEvery: Bool = false, in db: Database) throws {
        guard !companies.isEmpty || listingEvery else { return }
        try upsertCompanies(companies, in: db)
        if listingEvery { try removeMissing(table: "companies", kind: .company, keeping: companies.map(\.id), in: db) }
        try indexCompanyNames(in: db)
    }

    private static func upsertCompanies(_ companies: [CompanyRecord], in db: Database) throws {
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO companies (
                    id, company_id, name, name_key, plan, size, industry, website, monthly_spend, user_count,
                    created_at, updated_at, body)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET
                    company_id = excluded.company_id, name = excluded.name, name_key = excluded.name_key,
                    plan = excluded.plan, size = excluded.size,
                    industry = excluded.industry, website = excluded.website, monthly_spend = excluded.monthly_spend,
                    user_count = excluded.user_count, created_at = excluded.created_at,
                    updated_at = excluded.updated_at, body = excluded.body
                """)
        for company in companies {
            try statement.execute(arguments: [
                company.id, company.companyID, company.name, company.name.map(LinkName.key), company.plan, company.size,
                company.industry,
                company.website, company.monthlySpend, company.userCount, company.createdAt, company.updatedAt,
                company.body,
            ])
        }
    }

    /// Writes the full-text index of the companies' names anew, from the companies.
    private static func indexCompanyNames(in db: Database) throws {
        try db.execute(
            sql: """
                DELETE FROM companies_fts;
                INSERT INTO companies_fts (id, name) SELECT id, name FROM companies WHERE name IS NOT NULL;
                """)
    }

    /// The ids of companies some contact links to that the mirror has no record of (attached
    /// since the companies were last listed).
    static func unknownLinkedCompanies(limit: Int, in db: Database) throws -> [String] {
        try String.fetchAll(
            db,
            sql: """
                SELECT DISTINCT target FROM contact_links
                WHERE kind = 1 AND target NOT IN (SELECT id FROM companies) LIMIT ?
                """, arguments: [limit])
    }

    /// A contact waiting for the rest of its links, with its `updated_at` when it was read.
    struct LinkFollowup: Sendable {
        var rowID: Int64
        var id: String
        var kind: LinkKind
        var updatedAt: Int64
    }

    /// Contacts waiting for the rest of their links, up to `limit`.
    static func linkFollowups(limit: Int, in db: Database) throws -> [LinkFollowup] {
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT f.contact_row, c.id, f.kind, c.updated_at FROM link_followups f
                JOIN contacts c ON c.row_id = f.contact_row
                WHERE c.state = 'synced' ORDER BY f.contact_row, f.kind LIMIT ?
                """, arguments: [limit])
        return rows.compactMap { row in
            LinkKind(rawValue: row[2]).map { LinkFollowup(rowID: row[0], id: row[1], kind: $0, updatedAt: row[3]) }
        }
    }

    /// Stores a contact's whole list of one kind, read from its own endpoint, unless the contact
    /// changed since that list was asked for (its `updated_at` is past `asOf`'s): its newer body
    /// then holds the truth, and queued it again if it lists only some.
    static func completeLinks(
        _ kind: LinkKind, ids: [String], rowID: Int64, askedAt updatedAt: Int64, writer: LinkWriter, in db: Database
    ) throws {
        guard
            let current = try Int64.fetchOne(
                db, sql: "SELECT updated_at FROM contacts WHERE row_id = ? AND state = 'synced'", arguments: [rowID]),
            current == updatedAt
        else { return }
        try writer.replace(kind, ids: ids, complete: true, rowID: rowID, updatedAt: current, in: db)
    }

    /// Moves the links a bulk load wrote aside into `contact_links`, in the index's order, each
    /// with its contact's `updated_at` as it is now (the caller's transaction, at the load's end).
    static func mergeLoadedLinks(in db: Database) throws {
        try db.execute(
            sql: """
                INSERT OR IGNORE INTO contact_links (kind, target, contact_updated_at, contact_row)
                SELECT l.kind, l.target, c.updated_at, l.contact_row
                FROM contact_links_loading l JOIN contacts c ON c.row_id = l.contact_row
                WHERE c.state != 'tombstoned'
                ORDER BY l.kind, l.target, c.updated_at, l.contact_row;
                DELETE FROM contact_links_loading;
                """)
    }

    /// Drops a followup whose contact is gone from Intercom (the next reconcile tombstones it).
    static func dropLinkFollowup(rowID: Int64, kind: LinkKind, in db: Database) throws {
        try db.execute(
            sql: "DELETE FROM link_followups WHERE contact_row = ? AND kind = ?", arguments: [rowID, kind.rawValue])
    }

    /// Links every stored contact to the tags and companies its body lists, in batches that
    /// commit the row_id they reached (`links.upgrade`): the upgrade of a mirror written before
    /// links were kept. A sync runs it before it pulls.
    func relinkStoredContacts() throws {
        while let start = try syncState(.linksUpgrade).flatMap({ Int64($0) }) {
            try writer.write { db in
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT row_id, updated_at, contact_body(body) FROM contacts
                        WHERE row_id > ? AND state = 'synced' ORDER BY row_id LIMIT ?
                        """, arguments: [start, Self.upgradeBatch])
                let links = try LinkWriter(in: db)
                for row in rows {
                    let body: String = row[2]
                    guard let contact = try? ScannedContact.read(body) else { continue }
                    try links.write(contact, rowID: row[0], updatedAt: row[1], fresh: false, in: db)
                }
                let next = rows.last.map { String($0[0] as Int64) }
                try Self.setSyncState(.linksUpgrade, to: next, in: db)
            }
        }
    }
}

extension ContactMirror {
    /// Whether every sync from now on reads segment memberships; turned off, the memberships
    /// the mirror holds are dropped (they would only grow stale).
    package func keepSegmentMembers(_ keep: Bool) throws {
        try writer.write { db in
            try Self.setSyncState(.segmentMembers, to: keep ? "1" : nil, in: db)
            if !keep { try db.execute(sql: "DELETE FROM contact_links WHERE kind = 2") }
        }
    }
}
