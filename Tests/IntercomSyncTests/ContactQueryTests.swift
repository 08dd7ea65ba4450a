import Foundation
import GRDB
import SyntheticData
import Testing

@testable import IntercomSync

@Suite struct ContactQueryTests {
    static let count = 600
    let generator = ContactGenerator(seed: 7)
    /// A file mirror, so that queries go through its own connection (`MirrorReader`);
    /// `throughThePool` answers the same queries through GRDB's pool.
    let folder: TemporaryDirectory
    let mirror: ContactMirror
    let throughThePool: ContactMirror
    let everyone: [SyntheticContact]

    init() throws {
        folder = try TemporaryDirectory()
        mirror = try ContactMirror.open(at: folder.path("mirror.sqlite"), mode: .createIfMissing)
        throughThePool = try ContactMirror(writer: mirror.writer.base)
        everyone = generator.contacts(0..<Self.count)
        _ = try mirror.upsertPage(
            IntercomPage.list(everyone, page: 1, perPage: Self.count, totalCount: Self.count, nextCursor: nil),
            fetchedAt: 1)
    }

    private func ids(_ query: ContactQuery) throws -> Set<String> {
        Set(try mirror.all(query).map(\.id))
    }

    private func expected(_ keep: (SyntheticContact) -> Bool) -> Set<String> {
        Set(everyone.filter(keep).map(\.id))
    }

    @Test func emailIsExactAndCaseInsensitive() throws {
        let target = everyone[17]
        var query = ContactQuery()
        query.email = target.email.uppercased()
        #expect(try ids(query) == [target.id])
        query.email = String(target.email.dropLast())
        #expect(try ids(query).isEmpty)
    }

    @Test func externalIDAndRole() throws {
        var query = ContactQuery()
        query.externalID = "user-\(everyone.first { $0.role == .user }!.index)"
        #expect(try ids(query).count == 1)
        query = ContactQuery()
        query.role = .lead
        #expect(try ids(query) == expected { $0.role == .lead })
    }

    @Test func nameContainsIsCaseInsensitiveAndLiteral() throws {
        var query = ContactQuery()
        query.nameContains = "o'BRIEN"
        #expect(try ids(query) == expected { $0.name.lowercased().contains("o'brien") })
        #expect(try !ids(query).isEmpty)
        query.nameContains = "%"
        #expect(try ids(query).isEmpty)
    }

    @Test func fullTextPrefixIgnoresAccentsAndCoversEmailAndPhone() throws {
        var query = ContactQuery()
        query.search = "jose"
        let joses = expected { $0.name.hasPrefix("José") || $0.email.contains("jose") }
        #expect(try ids(query) == joses)
        #expect(!joses.isEmpty)

        let target = everyone.first { $0.phone != nil }!
        query.search = String(target.phone!.dropFirst().prefix(8))
        #expect(try ids(query).contains(target.id))

        query.search =
            "\(target.email.split(separator: "@")[0].split(separator: ".")[0]) \(target.email.split(separator: ".")[1].prefix(3))"
        #expect(try ids(query).contains(target.id))
    }

    @Test func hostileInputIsOnlyData() throws {
        for text in ["' OR 1=1 --", "\"*\" NEAR(a b)", "name:jose", "x\") OR (\"y", "%_\\"] {
            var query = ContactQuery()
            query.email = text
            #expect(try ids(query).isEmpty)
            query = ContactQuery()
            query.nameContains = text
            #expect(try ids(query).isEmpty)
            query = ContactQuery()
            query.search = text
            // Either a clear QueryError (nothing to search for) or an ordinary, narrow result:
            // never an SQL or FTS syntax error, never everything.
            do {
                #expect(try ids(query).count < Self.count)
            } catch is QueryError {
                #expect(text.allSatisfy { !($0.isLetter || $0.isNumber) })
            }
            query = ContactQuery()
            query.customAttributes[text] = .string(text)
            #expect(try ids(query).isEmpty)
        }
        var query = ContactQuery()
        query.search = "@@ --"
        #expect(throws: QueryError.self) { try mirror.contacts(matching: query) }
        #expect(try mirror.count() == Self.count)
    }

    @Test func updatedRange() throws {
        let pivot = everyone.map(\.updatedAt).sorted()[Self.count / 2]
        var query = ContactQuery()
        query.updatedSince = pivot
        #expect(try ids(query) == expected { $0.updatedAt >= pivot })
        query = ContactQuery()
        query.updatedBefore = pivot
        #expect(try ids(query) == expected { $0.updatedAt < pivot })
    }

    @Test func customAttributesCompareWithTheirType() throws {
        var query = ContactQuery()
        query.customAttributes = ["plan": .string("pro"), "vip": .bool(true)]
        let wanted = expected { contact in
            contact.customAttributes.contains { $0.0 == "plan" && $0.1 == .string("pro") }
                && contact.customAttributes.contains { $0.0 == "vip" && $0.1 == .bool(true) }
        }
        #expect(try ids(query) == wanted)
        let seats = everyone[3].customAttributes.first { $0.0 == "seats" }!.1
        guard case .int(let number) = seats else { Issue.record("seats is not an int"); return }
        query.customAttributes = ["seats": .int(Int64(number))]
        #expect(try ids(query).contains(everyone[3].id))
        query.customAttributes = ["seats": .string(String(number))]
        #expect(try ids(query).isEmpty)
    }

    @Test func tombstonesHiddenUnlessAsked() throws {
        try mirror.writer.write { db in
            try db.execute(sql: "UPDATE contacts SET state = 'tombstoned' WHERE id = ?", arguments: [everyone[0].id])
            try db.execute(sql: "UPDATE contacts SET state = 'pending' WHERE id = ?", arguments: [everyone[1].id])
        }
        var query = ContactQuery()
        #expect(try ids(query).count == Self.count - 1)
        #expect(try !ids(query).contains(everyone[0].id))
        query.states = [.tombstoned]
        #expect(try ids(query) == [everyone[0].id])
        query.states = [.pending]
        #expect(try ids(query) == [everyone[1].id])
    }

    @Test(arguments: [
        ContactSort(.updatedAt, descending: true), ContactSort(.updatedAt), ContactSort(.name),
        ContactSort(.name, descending: true), ContactSort(.email),
    ])
    func keysetPagesCoverEverythingOnceInOrder(sort: ContactSort) throws {
        var query = ContactQuery()
        query.sort = sort
        query.limit = 7
        let walked = try mirror.all(query)
        #expect(walked.count == Self.count)
        #expect(Set(walked.map(\.id)).count == Self.count)
        let keys: [String] = walked.map { stored in
            switch sort.field {
            case .updatedAt: return String(format: "%012d", stored.contact.updatedAt)
            case .name: return (stored.contact.name ?? "").lowercased()
            default: return (stored.contact.email ?? "").lowercased()
            }
        }
        let ordered = sort.descending ? keys.sorted(by: >) : keys.sorted()
        #expect(keys == ordered)
    }

    @Test func contactsSharingAnUpdatedAtAcrossPageBoundaries() throws {
        let shared = try ContactMirror.inMemory()
        let same = generator.contacts(0..<25).map { contact -> SyntheticContact in
            var copy = contact
            copy.updatedAt = 1_700_000_000
            return copy
        }
        _ = try shared.upsertPage(IntercomPage.list(same, page: 1, perPage: 25, totalCount: 25, nextCursor: nil), fetchedAt: 1)
        var query = ContactQuery()
        query.limit = 4
        let walked = try shared.all(query)
        #expect(walked.count == 25)
        #expect(Set(walked.map(\.id)).count == 25)
    }

    @Test func relevancePagesAndFilters() throws {
        var query = ContactQuery()
        query.search = "ma"
        query.sort = ContactSort(.relevance)
        query.limit = 5
        let walked = try mirror.all(query)
        #expect(walked.count > query.limit, "too few matches to exercise relevance paging")
        var plain = ContactQuery()
        plain.search = "ma"
        #expect(Set(walked.map(\.id)) == (try ids(plain)))
        #expect(walked.count == Set(walked.map(\.id)).count)
    }

    @Test(arguments: [false, true])
    func storedOrderPagesInRowOrderWithAndWithoutSearch(descending: Bool) throws {
        for search in [nil, "ma"] as [String?] {
            var query = ContactQuery()
            query.search = search
            query.sort = ContactSort(.stored, descending: descending)
            query.limit = 7
            let walked = try mirror.all(query)
            var plain = ContactQuery()
            plain.search = search
            plain.limit = 10_000
            #expect(walked.count > query.limit)
            #expect(Set(walked.map(\.id)) == (try ids(plain)))
            let rowIDs = walked.map(\.rowID)
            #expect(rowIDs == (descending ? rowIDs.sorted(by: >) : rowIDs.sorted()))
        }
    }

    private func explained(_ statement: PlannedStatement) throws -> [String] {
        try mirror.writer.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + statement.sql, arguments: statement.arguments)
                .map { $0["detail"] as String }
        }
    }

    @Test func storedOrderAndEveryRelevanceTierLetFTSStopAtTheLimit() throws {
        var query = ContactQuery()
        query.search = "ma lo"
        query.sort = ContactSort(.stored)
        let stored = try QueryPlan(query)
        let statements = [stored.statement()] + stored.relevanceTiers.map { stored.storedStatement(match: $0, after: 9) }
        for statement in statements {
            let plan = try explained(statement)
            #expect(!plan.contains { $0.contains("TEMP B-TREE") }, "\(statement.sql): \(plan)")
        }
    }

    /// Contacts with these names and emails, in this row order, in a mirror of their own.
    private func mirror(of people: [(name: String, email: String)]) throws -> ContactMirror {
        let contacts = generator.contacts(0..<people.count).enumerated().map { offset, contact -> SyntheticContact in
            var copy = contact
            copy.name = people[offset].name
            copy.email = people[offset].email
            return copy
        }
        let mirror = try ContactMirror.inMemory()
        _ = try mirror.upsertPage(
            IntercomPage.list(contacts, page: 1, perPage: contacts.count, totalCount: contacts.count, nextCursor: nil),
            fetchedAt: 1)
        return mirror
    }

    @Test func relevanceRanksTheNameBeforeTheEmailAndTheStartBeforeTheRest() throws {
        // Row order deliberately runs against the ranking.
        let ranked = try mirror(of: [
            ("Zed Quinn", "ana.quinn@example.org"),  // 3: only the email
            ("Bruno Anaya", "bruno@example.org"),  // 2: a later word of the name
            ("Anaïs Wilson", "anais@example.org"),  // 1: the name begins with the prefix
            ("Ana Rossi", "ana.rossi@example.org"),  // 0: the name begins with the word
            ("Carla Ruiz", "carla@example.org"),  // no match
            ("Ana Lopez", "ana@example.org"),  // 0
        ])
        var query = ContactQuery()
        query.search = "ana"
        query.sort = ContactSort(.relevance)
        query.limit = 2
        let names = try ranked.all(query).map { $0.contact.name ?? "" }
        #expect(names == ["Ana Rossi", "Ana Lopez", "Anaïs Wilson", "Bruno Anaya", "Zed Quinn"])
        query.sort = ContactSort(.relevance, descending: true)
        #expect(try ranked.all(query).map { $0.contact.name ?? "" } == names.reversed())

        query.sort = ContactSort(.relevance)
        query.search = "ana r"
        #expect(try ranked.all(query).map { $0.contact.name ?? "" } == ["Ana Rossi"])
        query.search = "ros ana"
        #expect(try ranked.all(query).map { $0.contact.name ?? "" } == ["Ana Rossi"])
        query.search = "quinn ana"
        #expect(try ranked.all(query).map { $0.contact.name ?? "" } == ["Zed Quinn"])
    }

    @Test func relevanceCursorsOfTheEarlierRankingAreRefused() throws {
        var query = ContactQuery()
        query.search = "ma"
        query.sort = ContactSort(.relevance)
        query.cursor = ContactCursor(sort: query.sort, key: .real(-4.5), rowID: 3)
        #expect(throws: QueryError.self) { try mirror.contacts(matching: query) }
        query.cursor = ContactCursor(sort: query.sort, key: .integer(9), rowID: 3)  // no such tier
        #expect(throws: QueryError.self) { try mirror.contacts(matching: query) }
        query.cursor = ContactCursor(sort: query.sort, key: .integer(3), rowID: 3)
        #expect(throws: Never.self) { try mirror.contacts(matching: query) }
    }

    @Test(arguments: [false, true])
    func aSearchByUpdatedAtFindsTheSamePagesEveryWay(descending: Bool) throws {
        for search in ["ma", "o'br", "ana lo"] {
            var query = ContactQuery()
            query.search = search
            query.sort = ContactSort(.updatedAt, descending: descending)
            query.limit = 6
            let ways: [QueryPlan.SearchWay] = [.readingMatches, .walking, .checkingRows]
            var pages: [[String]] = ways.map { _ in [] }
            for (index, way) in ways.enumerated() {
                var page = query
                while true {
                    let plan = try QueryPlan(page)
                    let rows = try mirror.writer.read { db in try PoolQueries(db: db).contacts(plan.statement(way)) }
                    pages[index] += rows.prefix(query.limit).map(\.id)
                    guard rows.count > query.limit, let last = rows.prefix(query.limit).last else { break }
                    page.cursor = ContactCursor(
                        sort: query.sort, key: .integer(Int64(last.contact.updatedAt)), rowID: last.rowID)
                }
            }
            var plain = ContactQuery()
            plain.search = search
            plain.sort = ContactSort(.stored)
            let everyMatch = try mirror.all(plain)
            #expect(!everyMatch.isEmpty, "\(search)")
            #expect(pages[0] == pages[1], "\(search)")
            #expect(pages[0] == pages[2], "\(search)")
            #expect(Set(pages[0]) == Set(everyMatch.map(\.id)), "\(search)")
            #expect(try mirror.all(query).map(\.id) == pages[0], "\(search)")
            for way in [QueryPlan.SearchWay.walking, .checkingRows] {
                let walk = try explained(try QueryPlan(query).statement(way))
                #expect(walk.contains { $0.contains("contacts_by_updated_at") }, "\(walk)")
                #expect(!walk.contains { $0.contains("TEMP B-TREE") }, "\(walk)")
            }
        }
    }

    /// `contact_matches` must find exactly what the full-text index finds, or the walk that
    /// uses it would answer differently from the other ways.
    @Test func contactMatchesAgreesWithTheFullTextIndex() throws {
        let odd = try mirror(of: [
            ("Ana-Lucía Núñez", "ana_lucia@example.org"),
            ("François O'Brien", "f.obrien+crm@example.co.uk"),
            ("Łukasz Żółć", "lukasz@example.pl"),
            ("हिंदी नाम", "hindi@example.in"),
            ("李小龍", "bruce@example.hk"),
            ("Zoë  van der Berg", "zoe@example.nl"),
            ("", "no.name.42@example.org"),
            ("ǅemal Ǉubić", "dzemal@example.ba"),
        ])
        var texts: Set<String> = [
            "ana luc", "nunez", "núñ", "o brien", "obrien", "lukasz", "zol", "हिं", "नाम", "李", "小龍", "van der", "42", "no name",
            "ǆe", "crm", "co uk", "zz", "a", "e",
        ]
        for contact in generator.contacts(0..<200) {
            let words = (contact.name + " " + contact.email).split { !($0.isLetter || $0.isNumber) }
            for word in words.prefix(3) { texts.insert(String(word.prefix(1 + contact.index % 4))) }
        }
        let contacts = generator.contacts(0..<200)
        let everyone = try mirror(of: contacts.map { ($0.name, $0.email) })
        for candidate in [odd, everyone] {
            for text in texts.sorted() {
                let words = try QueryPlan.words(of: text)
                let (byIndex, byRows) = try candidate.writer.read { db in
                    let plan = try QueryPlan(
                        {
                            var query = ContactQuery(); query.search = text; return query
                        }())
                    let byIndex = try Set(
                        Int64.fetchAll(
                            db, sql: "SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH ?",
                            arguments: [plan.matchExpression]))
                    let byRows = try Set(
                        Int64.fetchAll(
                            db, sql: "SELECT row_id FROM contacts WHERE contact_matches(?, name, email, phone)",
                            arguments: [words.joined(separator: " ")]))
                    return (byIndex, byRows)
                }
                #expect(byIndex == byRows, "\(text)")
            }
        }
    }

    @Test func theWalkThresholdsGrowWithTheMirrorAndThePage() {
        #expect(QueryPlan.walkThresholds(limit: 20, contacts: 0) == (200, 200))
        let million = QueryPlan.walkThresholds(limit: 20, contacts: 1_000_000)
        #expect(million == (2_645, 14_491))
        let larger = QueryPlan.walkThresholds(limit: 200, contacts: 1_000_000)
        #expect(larger.walking > million.walking && larger.checkingRows > million.checkingRows)
    }

    @Test func cursorTokensRoundTripAndThoseOfTheEarlierEncoderStillRead() throws {
        let cursors = [
            ContactCursor(sort: ContactSort(.updatedAt, descending: true), key: .integer(1_767_255_600), rowID: 885_144),
            ContactCursor(sort: ContactSort(.name), key: .text(#"Zoë "Z" O'Brien \ 李"#), rowID: 7),
            ContactCursor(sort: ContactSort(.relevance), key: .integer(2), rowID: 1),
            ContactCursor(sort: ContactSort(.email), key: .real(-4.5), rowID: 3),
        ]
        for cursor in cursors {
            #expect(try ContactCursor(token: cursor.token) == cursor)
            #expect(!cursor.token.contains { "+/=".contains($0) })
        }
        // What JSONEncoder wrote for the first cursor, before the token was written by hand.
        struct Earlier: Encodable {
            var f = "updated_at"
            var d = true
            var i: Int64? = 1_767_255_600
            var r: Int64 = 885_144
        }
        let earlier = try JSONEncoder().encode(Earlier()).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        #expect(try ContactCursor(token: earlier) == cursors[0])
    }

    @Test func cursorOfAnotherSortAndBadLimitsAreRefused() throws {
        var query = ContactQuery()
        query.limit = 2
        let cursor = try #require(try mirror.contacts(matching: query).nextCursor)
        #expect(try ContactCursor(token: cursor.token) == cursor)
        query.sort = ContactSort(.name)
        query.cursor = cursor
        #expect(throws: QueryError.self) { try mirror.contacts(matching: query) }
        #expect(throws: QueryError.self) { try ContactCursor(token: "not-a-cursor") }
        var zero = ContactQuery()
        zero.limit = 0
        #expect(throws: QueryError.self) { try mirror.contacts(matching: zero) }
        var relevance = ContactQuery()
        relevance.sort = ContactSort(.relevance)
        #expect(throws: QueryError.self) { try mirror.contacts(matching: relevance) }
    }

    @Test func emailLookupUsesTheIndex() throws {
        var query = ContactQuery()
        query.email = "x@example.com"
        let plan = try explained(try QueryPlan(query).statement())
        #expect(plan.contains { $0.contains("contacts_by_email") })
    }

    @Test func statusCountsByState() throws {
        try mirror.writer.write { db in
            try db.execute(sql: "UPDATE contacts SET state = 'pending' WHERE id = ?", arguments: [everyone[0].id])
            try db.execute(
                sql:
                    "INSERT INTO outbox (kind, payload, state, created_at, updated_at) VALUES ('send_message', '{}', 'failed', 1, 1)"
            )
            try ContactMirror.setSyncState(.lastFullPullAt, to: "1700000000", in: db)
        }
        let status = try mirror.status()
        #expect(status.contacts == ContactCounts(synced: Self.count - 1, pending: 1, tombstoned: 0))
        #expect(status.outbox.failed == 1 && status.outbox.pending == 0)
        #expect(status.lastFullPullAt == 1_700_000_000)
        #expect(status.lastIncrementalPullAt == nil)
        #expect(status.path == folder.path("mirror.sqlite"))
    }

    /// Every query the suite asks answers the same, page by page, through the mirror's own
    /// connection and through the pool.
    @Test func theQueryConnectionAndThePoolAgree() throws {
        #expect(mirror.reader != nil && throughThePool.reader == nil)
        let target = everyone[17]
        var queries: [ContactQuery] = []
        for sort in [
            ContactSort(.updatedAt, descending: true), ContactSort(.name), ContactSort(.email, descending: true),
            ContactSort(.stored),
        ] {
            var query = ContactQuery()
            query.sort = sort
            query.limit = 37
            queries.append(query)
            query.search = "ma"
            queries.append(query)
            query.search = nil
            query.role = .lead
            query.updatedSince = target.updatedAt - 86_400 * 200
            queries.append(query)
        }
        var ranked = ContactQuery()
        ranked.search = "ma"
        ranked.sort = ContactSort(.relevance)
        ranked.limit = 9
        queries.append(ranked)
        var byEmail = ContactQuery()
        byEmail.email = target.email.uppercased()
        queries.append(byEmail)
        byEmail.states = [.tombstoned]
        queries.append(byEmail)
        for query in queries {
            let direct = try mirror.all(query)
            #expect(!direct.isEmpty || query.states == [.tombstoned])
            #expect(direct == (try throughThePool.all(query)), "\(query)")
        }
        #expect(try mirror.contact(id: target.id) == (try throughThePool.contact(id: target.id)))
        #expect(try mirror.contact(id: target.id)?.body != nil)
        #expect(try mirror.contact(id: "no-such-contact") == nil)
    }

    /// A query's statement is reset as soon as its rows are read, so it never holds back a
    /// checkpoint of the WAL; and an owner_id sent as an integer reads as its digits both ways.
    @Test func theQueryConnectionHoldsNoSnapshot() throws {
        let legacy = try Fixtures.text("contacts/legacy-2.15-avatar-string-owner-int.json")
        try mirror.writer.write { db in try ContactMirror.upsertContact(legacy, fetchedAt: 1, in: db) }
        let id = try #require(try JSONValue(jsonText: legacy)["id"]?.string)
        let direct = try #require(try mirror.contact(id: id))
        #expect(direct.contact.ownerID != nil)
        #expect(direct == (try throughThePool.contact(id: id)))
        var query = ContactQuery()
        query.limit = 3
        _ = try mirror.contacts(matching: query)
        let checkpoint = try mirror.writer.writeWithoutTransaction { db in
            try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)")
        }
        #expect(checkpoint?[0] == 0, "the checkpoint was blocked by a reader")
        #expect(try mirror.contacts(matching: query).contacts.count == 3)
    }

    /// A process asking many shapes of query keeps a bounded set of prepared statements, and
    /// answers the same after starting over.
    @Test func theQueryConnectionKeepsABoundedSetOfStatements() throws {
        let target = everyone[17]
        var byEmail = ContactQuery()
        byEmail.email = target.email
        for count in 1...(MirrorReader.maximumStatements + 6) {
            var query = ContactQuery()
            for index in 0..<count { query.customAttributes["absent_\(index)"] = .string("x") }
            #expect(try mirror.contacts(matching: query).contacts.isEmpty)
            #expect(mirror.reader?.preparedCount ?? 0 <= MirrorReader.maximumStatements)
        }
        #expect(try mirror.contacts(matching: byEmail).contacts.map(\.id) == [target.id])
    }
}
