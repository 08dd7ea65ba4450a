import Foundation
import IntercomSimulator
import Testing

@testable import IntercomSync

/// `contacts query --tag/--any-tag/--company/--segment`, `contacts get`'s links, and the
/// `tags`, `companies` and `segments` listings, as a user runs them.
@Suite(.serialized) struct LinksCommandTests {
    static func simulator() async throws -> IntercomSimulator {
        var configuration = SimulatorConfiguration()
        configuration.seedContacts = 600
        configuration.seed = 5
        configuration.seedTags = 20
        configuration.seedCompanies = 30
        configuration.accessToken = "tok_\(UUID().uuidString)"
        configuration.startTime = 1_767_225_600
        configuration.rateLimit = 1_000_000
        return try await IntercomSimulator.start(configuration)
    }

    static func json(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    @Test func queriesListingsAndGetShowTheLinks() async throws {
        let simulator = try await Self.simulator()
        defer { Task { await simulator.stop() } }
        let workspace = try Workspace(contacts: 0)
        let token = ["INTERCOM_ACCESS_TOKEN": simulator.accessToken]
        let synced = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync", "--segments"], db: workspace.db, simulator: simulator), environment: token)
        try #require(synced.status == 0, "\(synced.stderr)")
        #expect(synced.stdout.contains("20 tags, 4 segments, 30 companies read"), "\(synced.stdout)")
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
        #expect(Set(leadRows.compactMap { $0["id"] as? String }).isSubset(of: vip))
        #expect(leadRows.allSatisfy { $0["role"] as? String == "lead" })

        let companies = try CLI.run(["companies", "list", "--search", "co-1", "--json"] + db)
        let companyRows = try #require(try Self.json(companies.stdout) as? [[String: Any]])
        #expect(companyRows.contains { $0["companyID"] as? String == "co-1" })
        let companyName = try #require(companyRows.first { $0["companyID"] as? String == "co-1" }?["name"] as? String)
        let byCompany = try CLI.run(["contacts", "query", "--company", companyName, "--all", "--format", "json"] + db)
        let companyContacts = try #require((try Self.json(byCompany.stdout) as? [String: Any])?["contacts"] as? [Any])
        #expect(companyContacts.count == companyRows.first { $0["companyID"] as? String == "co-1" }?["contacts"] as? Int)

        let someone = try #require(vip.sorted().first)
        let got = try CLI.run(["contacts", "get", someone, "--offline", "--json"] + db)
        let mirror = try #require((try Self.json(got.stdout) as? [String: Any])?["mirror"] as? [String: Any])
        #expect((mirror["tags"] as? [String])?.contains("VIP") == true)
        let details = try CLI.run(["contacts", "get", someone, "--offline"] + db)
        #expect(details.stdout.contains("tags") && details.stdout.contains("VIP"), "\(details.stdout)")

        let segments = try CLI.run(["segments", "list"] + db)
        #expect(segments.stdout.contains("Leads"), "\(segments.stdout)")

        let unknown = try CLI.run(["contacts", "query", "--tag", "No Such Tag"] + db)
        #expect(unknown.status == 0)
        #expect(unknown.stderr.contains(#"no tag "No Such Tag""#), "\(unknown.stderr)")
    }

    @Test func aSegmentQueryWithoutMembershipsSaysHowToKeepThem() async throws {
        let simulator = try await Self.simulator()
        defer { Task { await simulator.stop() } }
        let workspace = try Workspace(contacts: 0)
        let token = ["INTERCOM_ACCESS_TOKEN": simulator.accessToken]
        let synced = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync"], db: workspace.db, simulator: simulator), environment: token)
        try #require(synced.status == 0, "\(synced.stderr)")
        let query = try CLI.run(["contacts", "query", "--segment", "Leads", "--db", workspace.db])
        #expect(query.status == 1)
        #expect(query.stderr.contains("sync --segments"), "\(query.stderr)")
    }
}
