import Foundation
import GRDB
import IntercomSimulator
import Testing

@testable import IntercomSync

/// `contacts query --tag/--any-tag/--company/--segment`, `contacts get`'s links, and the
/// `tags`, `companies` and `segments` listings, as a user runs them.
@Suite(.serialized) struct LinksCommandTests {
    static func simulator(contacts: Int = 600, seed: UInt64 = 5, companies: Int = 30) async throws
        -> IntercomSimulator
    {
        var configuration = SimulatorConfiguration()
        configuration.seedContacts = contacts
        configuration.seed = seed
        configuration.seedTags = 20
        configuration.seedCompanies = companies
        configuration.accessToken = "tok_\(UUID().uuidString)"
        configuration.startTime = 1_767_225_600
        configuration.rateLimit = 1_000_000
        return try await IntercomSimulator.start(configuration)
    }

    /// A seeded simulator, a mirror synced from it by `sync` with `flags`, and the token.
    static func synced(_ flags: [String] = []) async throws -> (IntercomSimulator, Workspace, [String: String]) {
        let simulator = try await Self.simulator()
        let workspace = try Workspace(contacts: 0)
        let token = ["INTERCOM_ACCESS_TOKEN": simulator.accessToken]
        let synced = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync"] + flags, db: workspace.db, simulator: simulator), environment: token)
        #expect(synced.status == 0, "\(synced.stderr)")
        #expect(synced.stdout.contains("20 tags, 4 segments, 30 companies read"), "\(synced.stdout)")
        return (simulator, workspace, token)
    }

    static func json(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    @Test func queriesListingsAndGetShowTheLinks() async throws {
        let (simulator, workspace, _) = try await Self.synced(["--segments"])
        defer { Task { await simulator.stop() } }
        let db = ["--db", workspace.db]
        let relations = await simulator.workspace.relationsByContact()
        let vipID = try #require(await simulator.workspace.tagList().first { $0.name == "VIP" }?.id)
        let vip = Set(relations.filter { $0.value.tags.contains(vipID) }.map(\.key))

        let tags = try CLI.run(["tags", "list", "--json"] + db)
        #expect(tags.status == 0, "\(tags.stderr)")
        let tagRows = try #require(try Self.json(tags.stdout) as? [[String: Any]])
        #expect(tagRows.count == 20)
        #expect(tagRows.first { $0["name"] as? String == "VIP" }?["contacts"] as? Int == vip.count)
        let table = try CLI.run(["tags", "list"] + db)
        #expect(table.stdout.contains("Früh Adopter"))

        let query = try CLI.run(["contacts", "query", "--tag", "vip", "--all", "--format", "ndjson"] + db)
        #expect(query.status == 0, "\(query.stderr)")
        let found = Set(
            try query.stdout.split(separator: "\n").map {
                try #require((try Self.json(String($0)) as? [String: Any])?["id"] as? String)
            })
        #expect(found == vip)

        let leads = try CLI.run(
            ["contacts", "query", "--tag", "VIP", "--segment", "leads", "--role", "lead", "--all", "--format", "json"] + db)
        #expect(leads.status == 0, "\(leads.stderr)")
        let leadRows = try #require((try Self.json(leads.stdout) as? [String: Any])?["contacts"] as? [[String: Any]])
        let leadIDs = Set(
            try await simulator.workspace.exportContacts().compactMap { body -> String? in
                let value = try JSONValue(jsonText: body)
                return value["role"]?.string == "lead" ? value["id"]?.string : nil
            })
        #expect(!leadIDs.intersection(vip).isEmpty, "the seed should have VIP leads")
        #expect(Set(leadRows.compactMap { $0["id"] as? String }) == leadIDs.intersection(vip))

        let companies = try CLI.run(["companies", "list", "--search", "co-1", "--json"] + db)
        let companyRows = try #require(try Self.json(companies.stdout) as? [[String: Any]])
        #expect(companyRows.contains { $0["company_id"] as? String == "co-1" })
        let companyName = try #require(companyRows.first { $0["company_id"] as? String == "co-1" }?["name"] as? String)
        let byCompany = try CLI.run(["contacts", "query", "--company", companyName, "--all", "--format", "json"] + db)
        let companyContacts = try #require((try Self.json(byCompany.stdout) as? [String: Any])?["contacts"] as? [Any])
        #expect(companyContacts.count == companyRows.first { $0["company_id"] as? String == "co-1" }?["contacts"] as? Int)

        let someone = try #require(vip.sorted().first)
        let got = try CLI.run(["contacts", "get", someone, "--offline", "--json"] + db)
        let mirror = try #require((try Self.json(got.stdout) as? [String: Any])?["mirror"] as? [String: Any])
        #expect((mirror["tags"] as? [String])?.contains("VIP") == true)
        let details = try CLI.run(["contacts", "get", someone, "--offline"] + db)
        #expect(details.stdout.contains("tags") && details.stdout.contains("VIP"), "\(details.stdout)")

        let segments = try CLI.run(["segments", "list"] + db)
        #expect(segments.stdout.contains("Leads"), "\(segments.stdout)")
        // Every list's JSON is snake case, as the rest of the tool's.
        let segmentRows = try #require(
            try Self.json(try CLI.run(["segments", "list", "--json"] + db).stdout) as? [[String: Any]])
        #expect(segmentRows.contains { $0["person_type"] != nil }, "\(segmentRows)")
        let keys = Set((companyRows + segmentRows).flatMap(\.keys))
        #expect(keys.allSatisfy { $0 == $0.lowercased() }, "\(keys)")

        let unknown = try CLI.run(["contacts", "query", "--tag", "No Such Tag"] + db)
        #expect(unknown.status == 0)
        #expect(unknown.stderr.contains(#"no tag "No Such Tag""#), "\(unknown.stderr)")
    }

    @Test func aSegmentQueryWithoutMembershipsSaysHowToKeepThem() async throws {
        let (simulator, workspace, _) = try await Self.synced()
        defer { Task { await simulator.stop() } }
        let query = try CLI.run(["contacts", "query", "--segment", "Leads", "--db", workspace.db])
        #expect(query.status == 1)
        #expect(query.stderr.contains("sync --segments"), "\(query.stderr)")
    }

    @Test func contactsTagStagesAndOutboxListShowsIt() async throws {
        let (simulator, workspace, token) = try await Self.synced()
        defer { Task { await simulator.stop() } }
        let db = ["--db", workspace.db]
        let id = try #require(await simulator.workspace.contactIDs().first)
        let tagged = try CLI.run(["contacts", "tag", id, "Key Account", "VIP"] + db)
        #expect(tagged.status == 0, "\(tagged.stderr)")
        #expect(tagged.stdout.contains("staged tagging #1, #2 of \(id)"), "\(tagged.stdout)")
        let query = try CLI.run(["contacts", "query", "--tag", "key account", "--format", "ndjson"] + db)
        #expect(query.stdout.contains(id))
        let list = try CLI.run(["outbox", "list"] + db)
        #expect(list.stdout.contains(#"tag_contact "Key Account""#), "\(list.stdout)")
        let empty = try CLI.run(["contacts", "tag", id, " "] + db)
        #expect(empty.status == 2, "\(empty.stderr)")
        #expect(empty.stderr.contains("tag name cannot be empty"), "\(empty.stderr)")
        let flush = try await CLI.runOffPool(
            SyncCommandTests.arguments(["outbox", "flush"], db: workspace.db, simulator: simulator), environment: token)
        #expect(flush.status == 0, "\(flush.stderr)")
        #expect(flush.stdout.contains("2 taggings"), "\(flush.stdout)")
    }

    /// Taggings (of contacts made offline too) across flushes killed with SIGKILL: each ends on
    /// Intercom as staged, on the contact it was staged for, and the mirror agrees. The kills
    /// land within the time a clean flush of the same entries took here.
    @Test func killedFlushesOfTaggingsEndAsStaged() async throws {
        let simulator = try await SyncCommandTests.simulator(contacts: 20, latency: 6)
        defer { Task { await simulator.stop() } }
        let reference = try Workspace(contacts: 0)
        let token = ["INTERCOM_ACCESS_TOKEN": simulator.accessToken]
        let synced = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync"], db: reference.db, simulator: simulator), environment: token)
        try #require(synced.status == 0, "\(synced.stderr)")
        let ids = await simulator.workspace.contactIDs()

        /// Stages trial `name`'s entries in a copy of the reference mirror: a contact made offline
        /// and tagged, eight contacts tagged, two of them untagged again.
        func stage(_ name: String) throws -> Workspace {
            let workspace = try Workspace(contacts: 0)
            try FileManager.default.copyItem(atPath: reference.db, toPath: workspace.db)
            let mirror = try ContactMirror.open(at: workspace.db, mode: .existing)
            _ = try mirror.stageContact(ContactDraft(email: "\(name)@example.com"), now: 1_767_225_600)
            _ = try mirror.stageTagging(contact: "\(name)@example.com", tags: ["\(name) new"], now: 1_767_225_600)
            for id in ids.prefix(8) { _ = try mirror.stageTagging(contact: id, tags: [name], now: 1_767_225_600) }
            for id in ids.prefix(2) {
                _ = try mirror.stageTagging(contact: id, tags: [name], untag: true, now: 1_767_225_600)
            }
            return workspace
        }
        let cleanWorkspace = try stage("clean")
        let clean = cleanWorkspace.db
        let started = ContinuousClock.now
        let cleanRun = try await CLI.runOffPool(
            SyncCommandTests.arguments(["outbox", "flush"], db: clean, simulator: simulator), environment: token)
        try #require(cleanRun.status == 0, "\(cleanRun.stderr)")
        var schedule = CLI.KillSchedule(cleanRun: ContinuousClock.now - started, from: 0.1, to: 0.9)

        var generator = SystemRandomNumberGenerator()
        var killedMidway = 0
        let trials = 8
        for trial in 0..<trials {
            let name = "trial\(trial)"
            let workspace = try stage(name)
            let db = workspace.db
            let arguments = SyncCommandTests.arguments(["outbox", "flush"], db: db, simulator: simulator)
            for _ in 0..<(trial % 2 == 0 ? 2 : 1) {
                let delay = schedule.delay(using: &generator)
                let began = ContinuousClock.now
                let status = try await CLI.offPool { try CLI.runKilled(arguments, environment: token, after: delay) }
                if status == nil { killedMidway += 1 } else { schedule.finished(in: ContinuousClock.now - began) }
            }
            let finish = try await CLI.runOffPool(arguments, environment: token)
            #expect(finish.status == 0, "trial \(trial): \(finish.stderr)")
            let mirror = try ContactMirror.open(at: db, mode: .existing)
            #expect(try mirror.outboxEntries().allSatisfy { $0.state == .sent }, "trial \(trial)")
            let tags = Dictionary(uniqueKeysWithValues: await simulator.workspace.tagList().map { ($0.name, $0.id) })
            let relations = await simulator.workspace.relationsByContact()
            let tagID = try #require(tags[name], "trial \(trial)")
            let carriers = Set(relations.filter { $0.value.tags.contains(tagID) }.map(\.key))
            #expect(carriers == Set(ids[2..<8]), "trial \(trial): \(carriers.count) carry the tag")
            let newTagID = try #require(tags["\(name) new"], "trial \(trial)")
            let newCarriers = relations.filter { $0.value.tags.contains(newTagID) }.map(\.key)
            let created = try await simulator.workspace.exportContacts().compactMap { body -> String? in
                let value = try JSONValue(jsonText: body)
                return value["email"]?.string == "\(name)@example.com" ? value["id"]?.string : nil
            }
            #expect(created.count == 1 && newCarriers == created, "trial \(trial)")
            var query = ContactQuery()
            query.tags = [name]
            query.limit = 100
            #expect(Set(try mirror.contacts(matching: query).contacts.map(\.id)) == carriers, "trial \(trial)")
        }
        #expect(killedMidway >= trials / 2, "most kills should land during the flush")
    }

    /// A mirror's links as (contact id → tag ids, company ids) of synced contacts with any.
    static func links(of path: String) throws -> [String: [Set<String>]] {
        let mirror = try ContactMirror.open(at: path, mode: .readOnly)
        defer { try? mirror.close() }
        return try mirror.writer.read { db in
            var links: [String: [Set<String>]] = [:]
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT c.id, l.kind, l.target FROM contact_links l JOIN contacts c ON c.row_id = l.contact_row
                    WHERE c.state = 'synced' AND l.kind IN (0, 1)
                    """)
            for row in rows {
                let id: String = row[0]
                links[id, default: [[], []]][row[1] as Int].insert(row[2])
            }
            return links
        }
    }

    /// First pulls of a workspace with tags and companies, large enough to defer their indexing
    /// (the links set aside until the load's end), killed with SIGKILL once or twice and then run
    /// to the end: each ends with every contact's links as Intercom has them (a pulled page commits with the cursor after it).
    @Test func killedPullsEndWithEveryLink() async throws {
        let simulator = try await Self.simulator(contacts: 21_000, seed: 9, companies: 300)
        defer { Task { await simulator.stop() } }
        let token = ["INTERCOM_ACCESS_TOKEN": simulator.accessToken]
        let expected = await simulator.workspace.relationsByContact()
            .filter { !$0.value.tags.isEmpty || !$0.value.companies.isEmpty }
            .mapValues { [$0.tags, $0.companies] }
        let reference = try Workspace(contacts: 0)
        let started = ContinuousClock.now
        let clean = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync"], db: reference.db, simulator: simulator), environment: token)
        try #require(clean.status == 0, "\(clean.stderr)")
        #expect(try Self.links(of: reference.db) == expected)
        var schedule = CLI.KillSchedule(cleanRun: ContinuousClock.now - started, from: 0.1, to: 0.9)
        var generator = SystemRandomNumberGenerator()
        var killedMidway = 0
        let trials = 4
        for trial in 0..<trials {
            let workspace = try Workspace(contacts: 0)
            let arguments = SyncCommandTests.arguments(["sync"], db: workspace.db, simulator: simulator)
            for _ in 0..<(trial % 2 + 1) {
                let delay = schedule.delay(using: &generator)
                let began = ContinuousClock.now
                let status = try await CLI.offPool { try CLI.runKilled(arguments, environment: token, after: delay) }
                if status == nil { killedMidway += 1 } else { schedule.finished(in: ContinuousClock.now - began) }
            }
            let finish = try await CLI.runOffPool(arguments, environment: token)
            #expect(finish.status == 0, "trial \(trial): \(finish.stderr)")
            #expect(try Self.links(of: workspace.db) == expected, "trial \(trial)")
        }
        #expect(killedMidway >= trials / 2, "most kills should land during the pull")
    }
}
