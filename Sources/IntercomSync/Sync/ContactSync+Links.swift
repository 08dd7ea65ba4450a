import Foundation
import GRDB

/// Tags, companies and segments: after a pull's contacts, the workspace's lists and the links
/// contacts' bodies could not hold.
///
/// A contact's body lists its tags and companies (the mirror links them as it stores the body),
/// but at most 10 of each: a contact with more waits in `link_followups`, and this reads its
/// whole list from `/contacts/{id}/tags` or `/contacts/{id}/companies`. Every sync reads the tag
/// and segment lists (one request each), so a tag deleted on Intercom goes from the mirror with
/// its links. A full pull lists every company too, and removes the ones Intercom no longer has;
/// an incremental one reads only the companies contacts link to that the mirror has not seen.
/// Segment memberships, which Intercom computes and which no contact body carries, are read by
/// searching each segment, when the mirror keeps them (`sync --segments`: a sync then costs a
/// search page per 150 members of each segment).
///
/// Every request goes through the client, so through the pull's rate budget.
extension ContactSync {
    /// What reading the links did.
    struct LinkPass {
        var tags = 0
        var segments = 0
        var companies = 0
        /// Contacts whose whole list of tags or companies was read.
        var followed = 0
    }

    /// Companies `GET /companies` pages through at most; a workspace with more is scrolled.
    static let pagedCompaniesLimit = 10_000
    /// Companies a page of `GET /companies`: Intercom's maximum.
    static let companiesPageSize = 60

    func syncLinks(
        full: Bool, into summary: inout SyncSummary, progress: (@Sendable (SyncProgress) -> Void)? = nil
    ) async throws {
        let before = client.counters.requests
        var pass = LinkPass()
        pass.tags = try await pullTags()
        pass.segments = try await pullSegments()
        pass.companies = full ? try await pullCompanies() : try await pullChangedCompanies()
        pass.followed = try await followLinks(progress: progress)
        if try mirror.syncState(.segmentMembers) != nil {
            try await pullSegmentMembers()
        }
        summary.tags = pass.tags
        summary.segments = pass.segments
        summary.companies = pass.companies
        summary.followedLinks = pass.followed
        summary.linkRequests = client.counters.requests - before
    }

    /// `GET /tags`: every tag of the workspace, in one answer.
    private func pullTags() async throws -> Int {
        let tags = try await client.send("GET", "/tags") { response in
            try Self.named(in: response.body, member: "data", operation: "GET /tags")
        }
        try await mirror.writer.write { db in try ContactMirror.replaceTags(tags.map { ($0.id, $0.name) }, in: db) }
        return tags.count
    }

    /// `GET /segments`: every segment of the workspace.
    private func pullSegments() async throws -> Int {
        let segments = try await client.send("GET", "/segments") { response in
            try Self.named(in: response.body, member: "segments", operation: "GET /segments")
        }
        try await mirror.writer.write { db in
            try ContactMirror.replaceSegments(
                segments.map {
                    (
                        $0.id, $0.name, $0.fields["person_type"]?.string, $0.fields["created_at"]?.int,
                        $0.fields["updated_at"]?.int
                    )
                }, in: db)
        }
        return segments.count
    }

    /// The objects with an id and a name in `member` of a JSON answer.
    static func named(in body: Data, member: String, operation: String) throws -> [(
        id: String, name: String, fields: [String: JSONValue]
    )] {
        let value = try JSONValue(jsonText: String(decoding: body, as: UTF8.self))
        guard case .array(let items)? = value[member] else {
            throw IntercomError(
                kind: .permanent, status: 200, code: "malformed_response",
                message: "the answer has no \"\(member)\" list", operation: operation)
        }
        return items.compactMap { item in
            guard case .object(let fields) = item, let id = fields["id"]?.string ?? fields["id"]?.int.map(String.init),
                let name = fields["name"]?.string
            else { return nil }
            return (id, name, fields)
        }
    }

    /// Every company: `GET /companies` by page, the pages after the first in parallel, or the
    /// scroll for a workspace with more than `GET /companies` pages through. Companies not
    /// listed are removed with their links.
    private func pullCompanies() async throws -> Int {
        let first = try await companyPage(1)
        var all = first.companies
        if first.total > Self.pagedCompaniesLimit {
            all = try await scrollCompanies()
        } else if first.pages > 1 {
            let pages = try await forEach(Array(2...first.pages)) { page in try await self.companyPage(page).companies }
            all += pages.flatMap { $0 }
        }
        try await mirror.writer.write { [all, now] db in
            try ContactMirror.upsertCompanies(all, in: db)
            try ContactMirror.removeCompanies(notIn: all.map(\.id), in: db)
            try ContactMirror.setSyncState(.companiesListedAt, to: String(now()), in: db)
        }
        return all.count
    }

    private func companyPage(_ page: Int) async throws -> (companies: [CompanyRecord], total: Int, pages: Int) {
        try await client.send(
            "GET", "/companies", query: [("page", String(page)), ("per_page", String(Self.companiesPageSize))]
        ) { response in
            let value = try JSONValue(jsonText: String(decoding: response.body, as: UTF8.self))
            guard case .array(let items)? = value["data"] else {
                throw IntercomError(
                    kind: .permanent, status: 200, code: "malformed_response", message: "the answer has no \"data\" list",
                    operation: "GET /companies")
            }
            let total = value["total_count"]?.int ?? items.count
            let pages = value["pages"]?["total_pages"]?.int ?? 1
            return (items.compactMap(CompanyRecord.init), total, pages)
        }
    }

    /// `GET /companies/scroll` to its end (a page with no companies).
    private func scrollCompanies() async throws -> [CompanyRecord] {
        var all: [CompanyRecord] = []
        var param: String?
        while true {
            let query = param.map { [("scroll_param", $0)] } ?? []
            let (companies, next) = try await client.send("GET", "/companies/scroll", query: query) { response in
                let value = try JSONValue(jsonText: String(decoding: response.body, as: UTF8.self))
                guard case .array(let items)? = value["data"] ?? value["companies"] else {
                    throw IntercomError(
                        kind: .permanent, status: 200, code: "malformed_response",
                        message: "the answer has no \"data\" list", operation: "GET /companies/scroll")
                }
                return (items.compactMap(CompanyRecord.init), value["scroll_param"]?.string)
            }
            if companies.isEmpty { return all }
            all += companies
            guard let next else { return all }
            param = next
        }
    }

    /// An incremental pull's companies: those newly linked (`pullUnknownCompanies`); then, when
    /// Intercom counts another number of companies than the mirror holds (some were deleted, or
    /// made with no contact yet), every company.
    private func pullChangedCompanies() async throws -> Int {
        let read = try await pullUnknownCompanies()
        let first = try await companyPage(1)
        let held = try await mirror.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM companies") ?? 0 }
        return first.total == held ? read : try await pullCompanies()
    }

    /// The companies contacts link to that the mirror has no record of, one `GET` each; a
    /// company Intercom no longer has loses its links.
    private func pullUnknownCompanies() async throws -> Int {
        var read = 0
        while true {
            let unknown = try await mirror.writer.read { db in try ContactMirror.unknownLinkedCompanies(limit: 500, in: db) }
            if unknown.isEmpty { return read }
            let found = try await forEach(unknown) { id -> (String, CompanyRecord?) in
                let path = "/companies/\(Self.pathComponent(id))"
                let company = try await self.client.send("GET", path, accepting: [404]) { response -> CompanyRecord? in
                    guard response.status != 404 else { return nil }
                    let value = try JSONValue(jsonText: String(decoding: response.body, as: UTF8.self))
                    guard let record = CompanyRecord(value) else {
                        throw IntercomError(
                            kind: .permanent, status: response.status, code: "malformed_response",
                            message: "the answer is not a company", operation: "GET \(path)")
                    }
                    return record
                }
                return (id, company)
            }
            try await mirror.writer.write { db in
                try ContactMirror.upsertCompanies(found.compactMap(\.1), in: db)
                for (id, company) in found where company == nil {
                    try db.execute(sql: "DELETE FROM contact_links WHERE kind = 1 AND target = ?", arguments: [id])
                }
            }
            read += found.count { $0.1 != nil }
        }
    }

    /// Reads the whole list of tags or companies of each contact whose body listed only some.
    private func followLinks(progress: (@Sendable (SyncProgress) -> Void)?) async throws -> Int {
        var followed = 0
        let total = try await mirror.writer.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM link_followups") ?? 0
        }
        while true {
            if total > 0 { progress?(SyncProgress(pass: .links, fetched: followed, total: total)) }
            let waiting = try await mirror.writer.read { db in try ContactMirror.linkFollowups(limit: 500, in: db) }
            if waiting.isEmpty { return followed }
            let lists = try await forEach(waiting) { item in
                (item, try await self.contactList(item.kind, of: item.id))
            }
            try await mirror.writer.write { db in
                for (item, list) in lists {
                    guard let list else {
                        try ContactMirror.dropLinkFollowup(rowID: item.rowID, kind: item.kind, in: db)
                        continue
                    }
                    switch item.kind {
                    case .tag:
                        let tags = try db.cachedStatement(
                            sql: "INSERT OR IGNORE INTO tags (id, name, name_key) VALUES (?, ?, ?)")
                        for tag in list.named { try tags.execute(arguments: [tag.id, tag.name, LinkName.key(tag.name)]) }
                    case .company: try ContactMirror.upsertCompanies(list.companies, in: db)
                    case .segment: break
                    }
                    // Clears the followup, unless the contact changed since it was queued: its
                    // newer body then decided (and queued it again if it lists only some).
                    try ContactMirror.completeLinks(
                        item.kind, ids: list.ids, rowID: item.rowID, askedAt: item.updatedAt, in: db)
                }
            }
            followed += lists.count
        }
    }

    /// A contact's whole list of tags or companies (every page); nil when the contact is gone.
    private func contactList(_ kind: LinkKind, of id: String) async throws -> (
        ids: [String], named: [(id: String, name: String)], companies: [CompanyRecord]
    )? {
        let path = "/contacts/\(Self.pathComponent(id))/\(kind.contactPath)"
        var ids: [String] = []
        var named: [(id: String, name: String)] = []
        var companies: [CompanyRecord] = []
        var page = 1
        while true {
            let query = kind == .company ? [("page", String(page)), ("per_page", "150")] : []
            let answer = try await client.send("GET", path, query: query, accepting: [404, 410]) {
                response -> (items: [JSONValue], more: Bool)? in
                guard response.status < 400 else { return nil }
                let value = try JSONValue(jsonText: String(decoding: response.body, as: UTF8.self))
                guard case .array(let items)? = value["data"] ?? value["companies"] else {
                    throw IntercomError(
                        kind: .permanent, status: response.status, code: "malformed_response",
                        message: "the answer has no list", operation: "GET \(path)")
                }
                let pages = value["pages"]?["total_pages"]?.int ?? 1
                return (items, kind == .company && page < pages && !items.isEmpty)
            }
            guard let answer else { return nil }
            for item in answer.items {
                guard let itemID = item["id"]?.string ?? item["id"]?.int.map(String.init) else { continue }
                ids.append(itemID)
                if let name = item["name"]?.string { named.append((itemID, name)) }
                if kind == .company, let company = CompanyRecord(item) { companies.append(company) }
            }
            guard answer.more else { return (ids, named, companies) }
            page += 1
        }
    }

    /// Each segment's members, by search (`segment_id`), replacing the mirror's memberships.
    private func pullSegmentMembers() async throws {
        let segments = try await mirror.writer.read { db in try String.fetchAll(db, sql: "SELECT id FROM segments") }
        for segment in segments {
            var members: [String] = []
            var cursor: String?
            repeat {
                var pagination = #"{"per_page":\#(Self.pageSize)"#
                if let cursor { pagination += #","starting_after":"\#(cursor)""# }
                pagination += "}"
                let json = #"{"query":{"field":"segment_id","operator":"=","value":"\#(segment)"},"pagination":\#(pagination)}"#
                let page = try await client.send("POST", "/contacts/search", json: json) { response in
                    try ScannedPage(data: response.body)
                }
                members += page.contacts.compactMap(\.id)
                cursor = page.nextCursor
            } while cursor != nil
            try await mirror.writer.write { [members] db in
                try ContactMirror.replaceMembers(of: segment, ids: members, in: db)
            }
        }
    }

    /// Runs `body` for each item, `concurrency` at a time, and returns the results in order.
    func forEach<Item: Sendable, Result: Sendable>(
        _ items: [Item], _ body: @escaping @Sendable (Item) async throws -> Result
    ) async throws -> [Result] {
        try await withThrowingTaskGroup(of: (Int, Result).self) { group in
            var results = [Result?](repeating: nil, count: items.count)
            var next = 0
            func start() {
                guard next < items.count else { return }
                let index = next
                let item = items[index]
                group.addTask { (index, try await body(item)) }
                next += 1
            }
            for _ in 0..<min(concurrency, items.count) { start() }
            while let (index, result) = try await group.next() {
                results[index] = result
                start()
            }
            return results.map { $0! }
        }
    }
}

extension ContactMirror {
    /// Makes the segment's members exactly the mirrored contacts among `ids`.
    static func replaceMembers(of segment: String, ids: [String], in db: Database) throws {
        try db.execute(sql: "DELETE FROM contact_links WHERE kind = 2 AND target = ?", arguments: [segment])
        let insert = try db.cachedStatement(
            sql: """
                INSERT OR IGNORE INTO contact_links (kind, target, contact_updated_at, contact_row)
                SELECT 2, ?, updated_at, row_id FROM contacts WHERE id = ? AND state = 'synced'
                """)
        for id in ids { try insert.execute(arguments: [segment, id]) }
    }
}
