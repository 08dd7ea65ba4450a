import Foundation
import GRDB
import Testing

@testable import IntercomSync

/// Queries by tag, company and segment, alone and with every other filter, paged.
@Suite struct LinkQueryTests {
    static let tagNames = ["VIP", "Früh Adopter", #"O'Brien "key" account"#, "churn risk"]
    static let companies = [("c1", "co-1", "Acme Inc"), ("c2", "co-2", "Ünïcode GmbH"), ("c3", "co-3", "Acme Inc")]

    struct Fixture {
        var id: String
        var role: String
        var name: String
        var updatedAt: Int
        var tags: [String]
        var companies: [String]
    }

    let folder: TemporaryDirectory
    let mirror: ContactMirror
    let throughThePool: ContactMirror
    let fixtures: [Fixture]

    init() throws {
        folder = try TemporaryDirectory()
        mirror = try ContactMirror.open(at: folder.path("mirror.sqlite"), mode: .createIfMissing)
        throughThePool = try ContactMirror(writer: mirror.writer.base)
        var fixtures: [Fixture] = []
        for index in 0..<400 {
            // Few distinct times, so pages split runs of equal updated_at.
            let tags = Self.tagNames.indices.filter { (index / (1 << $0)) % 2 == 1 }.map { "t\($0)" }
            let companies = index % 5 == 0 ? [] : [Self.companies[index % 3].0]
            fixtures.append(
                Fixture(
                    id: String(format: "ct%04d", index), role: index % 3 == 0 ? "lead" : "user",
                    name: index % 2 == 0 ? "Ana \(index)" : "Bo \(index)", updatedAt: 1_700_000_000 + index % 7,
                    tags: tags, companies: companies))
        }
        self.fixtures = fixtures
        _ = try mirror.upsertPage(Self.page(fixtures), fetchedAt: 1)
        try mirror.writer.write { db in
            try ContactMirror.replaceTags(Self.tagNames.enumerated().map { ("t\($0.offset)", $0.element) }, in: db)
            try ContactMirror.storeCompanies(
                Self.companies.map { id, companyID, name in
                    CompanyRecord(
                        .object(["type": "company", "id": .string(id), "company_id": .string(companyID), "name": .string(name)]))!
                }, in: db)
        }
    }

    static func page(_ fixtures: [Fixture]) -> String {
        func list(_ ids: [String], _ type: String) -> String {
            let items = ids.map { #"{"type":"\#(type)","id":"\#($0)","url":"/x"}"# }.joined(separator: ",")
            return #"{"type":"list","data":[\#(items)],"url":"/x","total_count":\#(ids.count),"has_more":false}"#
        }
        let bodies = fixtures.map { fixture in
            #"{"type":"contact","id":"\#(fixture.id)","role":"\#(fixture.role)","email":"\#(fixture.id)@example.com","#
                + #""name":"\#(fixture.name)","created_at":1600000000,"updated_at":\#(fixture.updatedAt),"#
                + #""tags":\#(list(fixture.tags, "tag")),"companies":\#(list(fixture.companies, "company"))}"#
        }
        return #"{"type":"list","data":[\#(bodies.joined(separator: ","))],"total_count":\#(fixtures.count)}"#
    }

    /// Every page of the query, limit 7, through the mirror's own connection and through the pool,
    /// which must agree; the ids in order.
    func walk(_ query: ContactQuery) throws -> [String] {
        var results: [[String]] = []
        for store in [mirror, throughThePool] {
            var query = query
            query.limit = 7
            var ids: [String] = []
            while true {
                let page = try store.contacts(matching: query)
                ids += page.contacts.map(\.id)
                guard let next = page.nextCursor else { break }
                query.cursor = next
            }
            results.append(ids)
        }
        #expect(results[0] == results[1])
        return results[0]
    }

    func expected(_ keep: (Fixture) -> Bool) -> Set<String> {
        Set(fixtures.filter(keep).map(\.id))
    }

    @Test func oneTagPagesInUpdatedAtOrderWithNoRepeats() throws {
        var query = ContactQuery()
        query.tags = ["vip"]
        let ids = try walk(query)
        #expect(Set(ids) == expected { $0.tags.contains("t0") })
        #expect(ids.count == Set(ids).count)
        let times = ids.map { id in fixtures.first { $0.id == id }!.updatedAt }
        #expect(times == times.sorted(by: >))
        // The same contacts as a query that reads them all and sorts them.
        query.limit = 10_000
        #expect(try mirror.contacts(matching: query).contacts.map(\.id) == ids)
    }

    @Test func everyTagMustMatchAndAnyTagOneOf() throws {
        var query = ContactQuery()
        query.tags = ["Früh Adopter", #"o'brien "KEY" account"#]
        #expect(Set(try walk(query)) == expected { $0.tags.contains("t1") && $0.tags.contains("t2") })
        query = ContactQuery()
        query.anyTags = ["churn risk", "VIP"]
        #expect(Set(try walk(query)) == expected { $0.tags.contains("t3") || $0.tags.contains("t0") })
        query.tags = ["früh adopter"]
        #expect(
            Set(try walk(query))
                == expected { ($0.tags.contains("t3") || $0.tags.contains("t0")) && $0.tags.contains("t1") })
    }

    @Test func companiesByNameOrCompanyID() throws {
        var query = ContactQuery()
        query.companies = ["acme inc"]
        // Two companies share the name: either one matches.
        #expect(Set(try walk(query)) == expected { $0.companies.contains("c1") || $0.companies.contains("c3") })
        query.companies = ["co-2"]
        #expect(Set(try walk(query)) == expected { $0.companies.contains("c2") })
        query.companies = ["ünïcode gmbh"]
        #expect(Set(try walk(query)) == expected { $0.companies.contains("c2") })
    }

    @Test func linkFiltersCombineWithEveryOtherFilterAndSort() throws {
        var query = ContactQuery()
        query.tags = ["VIP"]
        query.companies = ["Acme Inc"]
        query.role = .lead
        query.updatedSince = 1_700_000_003
        let want = expected {
            $0.tags.contains("t0") && ($0.companies.contains("c1") || $0.companies.contains("c3")) && $0.role == "lead"
                && $0.updatedAt >= 1_700_000_003
        }
        #expect(!want.isEmpty)
        #expect(Set(try walk(query)) == want)
        for sort in [ContactSort(.name), ContactSort(.email, descending: true), ContactSort(.stored)] {
            query.sort = sort
            #expect(Set(try walk(query)) == want)
        }
        query.search = "ana"
        for sort in [ContactSort(.relevance), ContactSort(.updatedAt, descending: true), ContactSort(.name)] {
            query.sort = sort
            #expect(Set(try walk(query)) == want.filter { id in fixtures.first { $0.id == id }!.name.hasPrefix("Ana") })
        }
    }

    @Test func anUnknownNameMatchesNothingAndIsNamed() throws {
        var query = ContactQuery()
        query.tags = ["no such tag"]
        #expect(try walk(query).isEmpty)
        query.companies = ["Nobody Ltd"]
        #expect(try mirror.unknownLinkNames(in: query) == [#"tag "no such tag""#, #"company "Nobody Ltd""#])
    }

    @Test func aTagPageReadsTheLinkIndexInOrder() throws {
        var query = ContactQuery()
        query.tags = ["VIP"]
        let planned = try QueryPlan(query)
        let driver = try mirror.writer.read { db in try planned.drivingLink(on: PoolQueries(db: db)) }
        #expect(driver == 0)
        let statement = planned.statement(driver: driver)
        let plan = try mirror.writer.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + statement.sql, arguments: statement.arguments)
                .map { $0["detail"] as String }
        }
        #expect(plan.first?.hasPrefix("SEARCH l USING PRIMARY KEY") == true, "\(plan)")
        #expect(!plan.contains { $0.contains("TEMP B-TREE") }, "no sort of every match: \(plan)")
    }

    @Test func linksFollowTheirContactsUpdatesAndTombstones() throws {
        var changed = fixtures[1]
        changed.updatedAt = 1_800_000_000
        changed.tags = ["t2"]
        _ = try mirror.upsertPage(Self.page([changed]), fetchedAt: 2)
        var query = ContactQuery()
        query.tags = ["VIP"]
        #expect(try !walk(query).contains(changed.id))
        query.tags = [#"O'Brien "key" account"#]
        #expect(try walk(query).first == changed.id)
        #expect(try mirror.links(ofContact: changed.id).tags == [#"O'Brien "key" account"#])
        try mirror.writer.write { db in
            try db.execute(sql: "UPDATE contacts SET state = 'tombstoned' WHERE id = ?", arguments: [changed.id])
        }
        #expect(try mirror.links(ofContact: changed.id) == ContactLinks())
        query.states = [.synced, .pending, .tombstoned]
        #expect(try !walk(query).contains(changed.id))
    }

    @Test func theFilterWithTheFewestLinksDrives() throws {
        // "VIP" is on half the contacts, company c2 on a fifth of the rest: the company drives.
        var query = ContactQuery()
        query.tags = ["VIP"]
        query.companies = ["co-2"]
        let planned = try QueryPlan(query)
        #expect(try mirror.writer.read { db in try planned.drivingLink(on: PoolQueries(db: db)) } == 1)
        // Sorted another way, or with a search, no link drives.
        query.sort = ContactSort(.name)
        #expect(try mirror.writer.read { db in try QueryPlan(query).drivingLink(on: PoolQueries(db: db)) } == nil)
    }

    @Test func aSearchFindsContactsByTheirCompanysName() throws {
        let acme = expected { $0.companies.contains("c1") || $0.companies.contains("c3") }
        let sorts = [
            ContactSort(.updatedAt, descending: true), ContactSort(.relevance), ContactSort(.relevance, descending: true),
            ContactSort(.stored), ContactSort(.stored, descending: true), ContactSort(.name),
        ]
        for sort in sorts {
            var query = ContactQuery()
            query.search = "acme"
            query.sort = sort
            let ids = try walk(query)
            #expect(Set(ids) == acme, "\(sort)")
            #expect(ids.count == Set(ids).count, "\(sort): a contact twice")
        }
        // Each way of a search by updated_at finds the same.
        var query = ContactQuery()
        query.search = "ACM"
        query.limit = 10_000
        let plan = try QueryPlan(query)
        for way in [QueryPlan.SearchWay.readingMatches, .walking, .checkingRows] {
            let ids = try mirror.writer.read { db in try PoolQueries(db: db).contacts(plan.statement(way)).map(\.id) }
            #expect(Set(ids) == acme, "\(way)")
        }
        query.search = "unicode"
        #expect(Set(try walk(query)) == expected { $0.companies.contains("c2") }, "accents ignored, as in names")
    }

    @Test func byRelevanceACompanysNameRanksAfterTheContactsOwnText() throws {
        var moved = fixtures[1]
        moved.updatedAt = 1_800_000_000
        moved.companies = ["c4"]
        _ = try mirror.upsertPage(Self.page([moved]), fetchedAt: 2)
        try mirror.writer.write { db in
            try ContactMirror.storeCompanies(
                [CompanyRecord(.object(["type": "company", "id": "c4", "company_id": "co-4", "name": "Ana Holdings"]))!],
                in: db)
        }
        var query = ContactQuery()
        query.search = "ana"
        query.sort = ContactSort(.relevance)
        let ids = try walk(query)
        #expect(ids.last == moved.id)
        #expect(Set(ids) == expected { $0.name.hasPrefix("Ana") }.union([moved.id]))
        query.sort = ContactSort(.relevance, descending: true)
        #expect(try walk(query).first == moved.id)
    }
}
