import GRDB

/// The writes of a sync's tags, segments and companies, each one transaction.
extension ContactMirror {
    /// A contact's whole list of tags or companies as Intercom answered it: the ids, the tags'
    /// names and the companies' records.
    struct FollowedList: Sendable {
        var ids: [String]
        var named: [(id: String, name: String)]
        var companies: [CompanyRecord]
    }

    /// Replaces the mirror's tags with the workspace's.
    func replaceTags(_ tags: [(id: String, name: String)]) async throws {
        try await writer.write { db in try Self.replaceTags(tags, in: db) }
    }

    /// Whether a contact links to a tag the mirror has no name for.
    func linksToUnnamedTags() async throws -> Bool {
        try await writer.read { db in try Self.linksToUnnamedTags(in: db) }
    }

    /// Replaces the mirror's segments with the workspace's.
    func replaceSegments(
        _ segments: [(id: String, name: String, personType: String?, createdAt: Int?, updatedAt: Int?)]
    ) async throws {
        try await writer.write { db in try Self.replaceSegments(segments, in: db) }
    }

    /// Stores companies; with `listingEvery`, they are every company of the workspace and the
    /// others are removed.
    func storeCompanies(_ companies: [CompanyRecord], listingEvery: Bool = false) async throws {
        try await writer.write { db in try Self.storeCompanies(companies, listingEvery: listingEvery, in: db) }
    }

    /// How many companies the mirror holds.
    func companyCount() async throws -> Int {
        try await writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM companies") ?? 0 }
    }

    /// Up to `limit` companies contacts link to that the mirror has no record of.
    func unknownLinkedCompanies(limit: Int) async throws -> [String] {
        try await writer.read { db in try Self.unknownLinkedCompanies(limit: limit, in: db) }
    }

    /// Stores the companies found, and drops the links to those Intercom no longer has.
    func settleUnknownCompanies(found: [CompanyRecord], gone: [String]) async throws {
        try await writer.write { db in
            try Self.storeCompanies(found, in: db)
            for id in gone {
                try db.execute(sql: "DELETE FROM contact_links WHERE kind = 1 AND target = ?", arguments: [id])
            }
        }
    }

    /// How many contacts wait for their whole list of tags or companies to be read.
    func linkFollowupCount() async throws -> Int {
        try await writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM link_followups") ?? 0 }
    }

    /// Up to `limit` of the contacts waiting for their whole list of tags or companies.
    func linkFollowups(limit: Int) async throws -> [LinkFollowup] {
        try await writer.read { db in try Self.linkFollowups(limit: limit, in: db) }
    }

    /// Stores the lists read for `followups` (nil where the contact is gone, which drops its
    /// followup). A followup is cleared unless its contact changed since it was queued: its
    /// newer body then decided (and queued it again if it lists only some).
    func completeFollowups(_ lists: [(followup: LinkFollowup, list: FollowedList?)]) async throws {
        try await writer.write { db in
            let tags = try db.cachedStatement(sql: "INSERT OR IGNORE INTO tags (id, name, name_key) VALUES (?, ?, ?)")
            for tag in lists.flatMap({ $0.list?.named ?? [] }) {
                try tags.execute(arguments: [tag.id, tag.name, LinkName.key(tag.name)])
            }
            try Self.storeCompanies(lists.flatMap { $0.list?.companies ?? [] }, in: db)
            let links = try LinkWriter(in: db)
            for (item, list) in lists {
                guard let list else {
                    try Self.dropLinkFollowup(rowID: item.rowID, kind: item.kind, in: db)
                    continue
                }
                try Self.completeLinks(
                    item.kind, ids: list.ids, rowID: item.rowID, askedAt: item.updatedAt, writer: links, in: db)
            }
        }
    }

    /// The ids of the workspace's segments the mirror holds.
    func segmentIDs() async throws -> [String] {
        try await writer.read { db in try String.fetchAll(db, sql: "SELECT id FROM segments") }
    }

    /// Makes the segment's members exactly the mirrored contacts among `ids`.
    func replaceMembers(of segment: String, ids: [String]) async throws {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM contact_links WHERE kind = 2 AND target = ?", arguments: [segment])
            let insert = try db.cachedStatement(
                sql: """
                    INSERT OR IGNORE INTO contact_links (kind, target, contact_updated_at, contact_row)
                    SELECT 2, ?, updated_at, row_id FROM contacts WHERE id = ? AND state = 'synced'
                    """)
            for id in ids { try insert.execute(arguments: [segment, id]) }
        }
    }

    /// Whether every sync reads segment memberships (`keepSegmentMembers`).
    func keepsSegmentMembers() throws -> Bool {
        try syncState(.segmentMembers) != nil
    }
}
