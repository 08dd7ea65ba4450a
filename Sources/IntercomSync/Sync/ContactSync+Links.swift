import Foundation
import IntercomJSON

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
    /// Companies `GET /companies` pages through at most; a workspace with more is scrolled.
    static let pagedCompaniesLimit = 10_000
    /// Companies a page of `GET /companies`: Intercom's maximum.
    static let companiesPageSize = 60

    /// The workspace's tag and segment lists and its first page of companies, as read by
    /// `readLists`: the requests every sync makes whatever it pulls.
    struct WorkspaceLists: Sendable {
        var tags: [NamedItem]
        var segments: [NamedItem]
        var firstCompanies: CompanyPage
        static let requests = 3
    }

    typealias NamedItem = (id: String, name: String, fields: [String: JSONValue])

    /// Reads the three lists at once. A sync starts it beside its pull, so that the lists cost
    /// the pull no round trip of its own, and writes them after the pull (`syncLinks`).
    func readLists() async throws -> WorkspaceLists {
        async let tags = readTags()
        async let segments = readSegments()
        async let companies = companyPage(1)
        return try await WorkspaceLists(tags: tags, segments: segments, firstCompanies: companies)
    }

    /// Writes the workspace's lists (`lists`, read while the pull ran, or read now), follows the
    /// links the contacts' bodies could not hold, and reads segment members when kept.
    func syncLinks(
        full: Bool, lists read: Task<WorkspaceLists, any Error>? = nil, into summary: inout SyncSummary,
        progress: (@Sendable (SyncProgress) -> Void)? = nil
    ) async throws {
        let before = client.counters.requests
        let lists = try await read?.value
        // Three lists, each a round trip or more, at once: one after another they cost a pull of
        // 20,000 contacts at 300 ms a request a third of its time.
        async let tags = pullTags(given: lists?.tags)
        async let segments = pullSegments(given: lists?.segments)
        async let companies =
            full
            ? pullCompanies(first: lists?.firstCompanies, readAhead: lists != nil)
            : pullChangedCompanies(first: lists?.firstCompanies)
        (summary.tags, summary.segments, summary.companies) = try await (tags, segments, companies)
        summary.followedLinks = try await followLinks(progress: progress)
        if try mirror.keepsSegmentMembers() {
            try await pullSegmentMembers()
        }
        summary.linkRequests = client.counters.requests - before + (lists == nil ? 0 : WorkspaceLists.requests)
    }

    /// `GET /tags`: every tag of the workspace, in one answer.
    private func readTags() async throws -> [NamedItem] {
        try await client.send("GET", "/tags") { response in
            try Self.named(Self.list(in: response.body, "data", operation: "GET /tags").items)
        }
    }

    /// Replaces the mirror's tags with `given` (read before the pull's contacts were) or with a
    /// list read now. A list read before names no tag made during the pull: when the pull's
    /// contacts link to a tag it does not name, the list is read again.
    private func pullTags(given: [NamedItem]?) async throws -> Int {
        var tags: [NamedItem]
        if let given { tags = given } else { tags = try await readTags() }
        try await mirror.replaceTags(tags.map { ($0.id, $0.name) })
        if given != nil, try await mirror.linksToUnnamedTags() {
            tags = try await readTags()
            try await mirror.replaceTags(tags.map { ($0.id, $0.name) })
        }
        return tags.count
    }

    /// `GET /segments`: every segment of the workspace.
    private func readSegments() async throws -> [NamedItem] {
        try await client.send("GET", "/segments") { response in
            try Self.named(Self.list(in: response.body, "segments", operation: "GET /segments").items)
        }
    }

    /// Replaces the mirror's segments with `given`, or with a list read now. No contact's body
    /// names its segments, so a list read before the pull is as good as one read after it.
    private func pullSegments(given: [NamedItem]?) async throws -> Int {
        let segments: [NamedItem]
        if let given { segments = given } else { segments = try await readSegments() }
        try await mirror.replaceSegments(
            segments.map {
                (
                    $0.id, $0.name, $0.fields["person_type"]?.string, $0.fields["created_at"]?.int,
                    $0.fields["updated_at"]?.int
                )
            })
        return segments.count
    }

    /// An answer's JSON and the list it holds under the first of `members` it has; an answer
    /// with none of them is malformed.
    static func list(in body: Data, _ members: String..., operation: String) throws -> (
        value: JSONValue, items: [JSONValue]
    ) {
        let value = try JSONValue(jsonText: String(decoding: body, as: UTF8.self))
        for member in members {
            if case .array(let items)? = value[member] { return (value, items) }
        }
        throw IntercomError(
            kind: .permanent, status: 200, code: "malformed_response",
            message: "the answer has no \"\(members[0])\" list", operation: operation)
    }

    /// The objects of `items` with an id and a name.
    static func named(_ items: [JSONValue]) -> [(id: String, name: String, fields: [String: JSONValue])] {
        items.compactMap { item in
            guard case .object(let fields) = item, let id = fields["id"]?.string ?? fields["id"]?.int.map(String.init),
                let name = fields["name"]?.string
            else { return nil }
            return (id, name, fields)
        }
    }

    /// Every company: `GET /companies` by page (`first`, when already read), the pages after the
    /// first in parallel, or the scroll for a workspace with more than `GET /companies` pages
    /// through. Companies not listed are removed with their links.
    /// With `readAhead`, the first page was read before the pull's contacts: the companies they
    /// link to that it could not list (made during the pull) are read one by one afterwards.
    private func pullCompanies(first given: CompanyPage? = nil, readAhead: Bool = false) async throws -> Int {
        let first: CompanyPage
        if let given { first = given } else { first = try await companyPage(1) }
        var all = first.companies
        if first.total > Self.pagedCompaniesLimit {
            all = try await scrollCompanies()
        } else if first.pages > 1 {
            // No more pages than the count of companies can fill, whatever the answer claims.
            let pages = min(first.pages, (first.total + Self.companiesPageSize - 1) / Self.companiesPageSize)
            all += try await forEachConcurrently(Array(2...max(2, pages))) { page in
                try await self.companyPage(page).companies
            }.flatMap { $0 }
        }
        try await mirror.storeCompanies(all, listingEvery: true)
        if readAhead { _ = try await pullUnknownCompanies() }
        return all.count
    }

    /// A page of `GET /companies`, with Intercom's count of companies and of pages.
    struct CompanyPage: Sendable {
        var companies: [CompanyRecord]
        var total: Int
        var pages: Int
    }

    private func companyPage(_ page: Int) async throws -> CompanyPage {
        try await client.send(
            "GET", "/companies", query: [("page", String(page)), ("per_page", String(Self.companiesPageSize))]
        ) { response in
            let (value, items) = try Self.list(in: response.body, "data", operation: "GET /companies")
            return CompanyPage(
                companies: items.compactMap(CompanyRecord.init), total: value["total_count"]?.int ?? items.count,
                pages: value["pages"]?["total_pages"]?.int ?? 1)
        }
    }

    /// `GET /companies/scroll` to its end (a page with no companies).
    private func scrollCompanies() async throws -> [CompanyRecord] {
        var all: [CompanyRecord] = []
        var param: String?
        var walk = CursorGuard("GET /companies/scroll")
        while true {
            let query = param.map { [("scroll_param", $0)] } ?? []
            let (companies, next) = try await client.send("GET", "/companies/scroll", query: query) { response in
                let (value, items) = try Self.list(
                    in: response.body, "data", "companies", operation: "GET /companies/scroll")
                return (items.compactMap(CompanyRecord.init), value["scroll_param"]?.string)
            }
            if companies.isEmpty { return all }
            all += companies
            try walk.check(next: next, ids: companies.map(\.id))
            guard let next else { return all }
            param = next
        }
    }

    /// An incremental pull's companies: those newly linked (`pullUnknownCompanies`); then, when
    /// Intercom counts another number of companies than the mirror holds (some were deleted, or
    /// made with no contact yet), every company.
    private func pullChangedCompanies(first given: CompanyPage? = nil) async throws -> Int {
        let read = try await pullUnknownCompanies()
        let first: CompanyPage
        if let given { first = given } else { first = try await companyPage(1) }
        let held = try await mirror.companyCount()
        return first.total == held ? read : try await pullCompanies(first: first)
    }

    /// The companies contacts link to that the mirror has no record of, one `GET` each; a
    /// company Intercom no longer has loses its links.
    private func pullUnknownCompanies() async throws -> Int {
        var read = 0
        while true {
            let unknown = try await mirror.unknownLinkedCompanies(limit: 500)
            if unknown.isEmpty { return read }
            let found = try await forEachConcurrently(unknown) { id -> (String, CompanyRecord?) in
                let path = "/companies/\(IntercomClient.pathComponent(id))"
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
            try await mirror.settleUnknownCompanies(
                found: found.compactMap(\.1), gone: found.filter { $0.1 == nil }.map(\.0))
            read += found.count { $0.1 != nil }
        }
    }

    /// Reads the whole list of tags or companies of each contact whose body listed only some.
    private func followLinks(progress: (@Sendable (SyncProgress) -> Void)?) async throws -> Int {
        var followed = 0
        let total = try await mirror.linkFollowupCount()
        while true {
            if total > 0 { progress?(SyncProgress(pass: .links, fetched: followed, total: total)) }
            let waiting = try await mirror.linkFollowups(limit: 500)
            if waiting.isEmpty { return followed }
            let lists = try await forEachConcurrently(waiting) { item in
                (item, try await self.contactList(item.kind, of: item.id))
            }
            try await mirror.completeFollowups(lists.map { ($0.0, $0.1) })
            followed += lists.count
        }
    }

    /// A contact's whole list of tags or companies (every page); nil when the contact is gone.
    private func contactList(_ kind: LinkKind, of id: String) async throws -> ContactMirror.FollowedList? {
        let path = "/contacts/\(IntercomClient.pathComponent(id))/\(kind.contactPath)"
        var ids: [String] = []
        var named: [(id: String, name: String)] = []
        var companies: [CompanyRecord] = []
        var page = 1
        var walk = CursorGuard("GET \(path)")
        while true {
            let query = kind == .company ? [("page", String(page)), ("per_page", "150")] : []
            let answer = try await client.send("GET", path, query: query, accepting: [404, 410]) {
                response -> (items: [JSONValue], more: Bool)? in
                guard response.status < 400 else { return nil }
                let (value, items) = try Self.list(in: response.body, "data", "companies", operation: "GET \(path)")
                let pages = value["pages"]?["total_pages"]?.int ?? 1
                return (items, kind == .company && page < pages && !items.isEmpty)
            }
            guard let answer else { return nil }
            try walk.check(next: nil, ids: answer.items.compactMap { $0["id"]?.string ?? $0["id"]?.int.map(String.init) })
            for item in answer.items {
                guard let itemID = item["id"]?.string ?? item["id"]?.int.map(String.init) else { continue }
                ids.append(itemID)
                if let name = item["name"]?.string { named.append((itemID, name)) }
                if kind == .company, let company = CompanyRecord(item) { companies.append(company) }
            }
            guard answer.more else { return ContactMirror.FollowedList(ids: ids, named: named, companies: companies) }
            page += 1
        }
    }

    /// Each segment's members, by search (`segment_id`), replacing the mirror's memberships.
    /// Only their ids are kept: the pages are read, not stored.
    private func pullSegmentMembers() async throws {
        let segments = try await mirror.segmentIDs()
        for segment in segments {
            let query: JSONValue = .object(["field": "segment_id", "operator": "=", "value": .string(segment)])
            var members: [String] = []
            var cursor: String?
            var walk = CursorGuard("POST /contacts/search (segment \(segment))")
            repeat {
                let page = try await client.send(
                    "POST", "/contacts/search", json: Self.searchBody(query, sort: nil, after: cursor)
                ) { response in try ScannedPage(data: response.body) }
                members += page.contacts.compactMap(\.id)
                try walk.check(next: page.nextCursor, ids: page.contacts.compactMap(\.id))
                cursor = page.nextCursor
            } while cursor != nil
            try await mirror.replaceMembers(of: segment, ids: members)
        }
    }
}
