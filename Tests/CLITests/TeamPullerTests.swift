import Foundation
import IntercomSimulator
import IntercomSyncTeam
import Testing

@testable import IntercomSync

/// `sync --store`: the team's one puller publishes its sync into the team's store, and an
/// agent's mirror that follows the store answers as a mirror pulled from Intercom does. The
/// real binary, the simulator and the test cluster (a database of its own for each test).
@Suite(
    .enabled(
        if: ProcessInfo.processInfo.environment["INTERCOM_SYNC_TEST_STORE"] != nil,
        "INTERCOM_SYNC_TEST_STORE is not set: scripts/test starts a PostgreSQL cluster for these tests"),
    .serialized)
struct TeamPullerTests {
    static func simulator(contacts: Int) async throws -> IntercomSimulator {
        var configuration = SimulatorConfiguration()
        configuration.seedContacts = contacts
        configuration.seedTags = 6
        configuration.seedCompanies = 4
        configuration.seed = 11
        configuration.accessToken = "tok_\(UUID().uuidString)"
        configuration.startTime = 1_767_225_600
        configuration.rateLimit = 1_000_000
        return try await IntercomSimulator.start(configuration)
    }

    /// What a mirror answers of each contact: its body, tags, companies and segments, by id.
    static func answers(_ db: String) throws -> [String: String] {
        let query = try CLI.run(["contacts", "query", "--all", "--format", "ndjson", "--db", db])
        var answers: [String: String] = [:]
        for line in query.stdout.split(separator: "\n") {
            let row = try JSONValue(jsonText: String(line))
            guard let id = row["id"]?.string else { continue }
            let got = try CLI.run(["contacts", "get", id, "--offline", "--json", "--db", db])
            let answer = try JSONValue(jsonText: got.stdout)
            let mirror = answer["mirror"]
            answers[id] =
                JSONValue.object([
                    "contact": answer["contact"] ?? .null, "tags": mirror?["tags"] ?? .null,
                    "companies": mirror?["companies"] ?? .null, "segments": mirror?["segments"] ?? .null,
                    "row": row,
                ]).jsonText
        }
        return answers
    }

    static func expectSame(_ direct: String, _ agent: String, _ label: String) throws {
        let expected = try answers(direct)
        let followed = try answers(agent)
        #expect(expected.count > 0)
        #expect(Set(followed.keys) == Set(expected.keys), "\(label): the same contacts")
        for (id, answer) in expected where followed[id] != answer {
            Issue.record("\(label): \(id) differs\n direct: \(answer)\n agent:  \(followed[id] ?? "missing")")
        }
        for listing in ["tags", "companies", "segments"] {
            let expected = try CLI.run([listing, "list", "--json", "--db", direct])
            #expect(expected.status == 0, "\(expected.stderr)")
            let followed = try CLI.run([listing, "list", "--json", "--db", agent])
            #expect(followed.stdout == expected.stdout, "\(label): the same \(listing)")
        }
    }

    /// A mirror pulled from Intercom and an agent's mirror that followed the team's store
    /// answer every contact alike, with its tags, companies and segments, after a first pull
    /// and after changes (an edit, a tagging, a deletion); the agent never asks Intercom.
    @Test func anAgentsMirrorAnswersAsAMirrorPulledFromIntercom() async throws {
        let url = try await TeamWorkerTests.freshStore()
        var bare = url
        bare.password = nil
        let simulator = try await Self.simulator(contacts: 60)
        defer { Task { await simulator.stop() } }
        let token = ["INTERCOM_ACCESS_TOKEN": simulator.accessToken]
        let password = ["PGPASSWORD": url.password ?? ""]
        let direct = try Workspace(contacts: 0)
        let puller = try Workspace(contacts: 0)
        let agent = try Workspace(contacts: 0)
        func pull(_ extra: [String] = []) async throws {
            let synced = try await CLI.runOffPool(
                SyncCommandTests.arguments(["sync"] + extra, db: direct.db, simulator: simulator), environment: token)
            #expect(synced.status == 0, "\(synced.stderr)")
            let pulled = try await CLI.runOffPool(
                SyncCommandTests.arguments(["sync", "--store", bare.description] + extra, db: puller.db, simulator: simulator),
                environment: token.merging(password) { $1 })
            #expect(pulled.status == 0, "\(pulled.stderr)")
            #expect(pulled.stdout.contains("published"), "\(pulled.stdout)")
            let before = await simulator.workspace.requestLog().count
            let followed = try await CLI.runOffPool(
                ["sync", "--upstream", bare.description, "--db", agent.db], environment: password)
            #expect(followed.status == 0, "\(followed.stderr)")
            #expect(await simulator.workspace.requestLog().count == before, "the agent made no request to Intercom")
        }
        let ids = await simulator.workspace.contactIDs()
        // More tags than a body lists: a sync reads the contact's whole list.
        for index in 0..<12 { _ = try await simulator.workspace.tag(contact: ids[3], name: "Many \(index)") }
        try await pull()
        try Self.expectSame(direct.db, agent.db, "first pull")
        let many = try CLI.run(["contacts", "query", "--tag", "Many 11", "--format", "ndjson", "--db", agent.db])
        #expect(many.stdout.contains(ids[3]), "the twelfth tag, which no body lists, reached the agent")
        let linked = try Self.answers(agent.db).values.map { try JSONValue(jsonText: $0) }
        #expect(linked.contains { $0["tags"]?.elements.isEmpty == false }, "some contacts are tagged")
        #expect(linked.contains { $0["companies"]?.elements.isEmpty == false }, "some belong to companies")

        simulator.workspace.clock.advance(by: 600)
        try await simulator.workspace.edit(id: ids[0], fieldsJSON: #"{"name": "Renamed On Intercom"}"#)
        _ = try await simulator.workspace.tag(contact: ids[1], name: "Escalated")
        try await simulator.workspace.delete(id: ids[2])
        try await pull(["--reconcile"])
        try Self.expectSame(direct.db, agent.db, "after changes")
        let escalated = try CLI.run(["contacts", "query", "--tag", "Escalated", "--format", "ndjson", "--db", agent.db])
        #expect(escalated.stdout.contains(ids[1]), "\(escalated.stdout)\(escalated.stderr)")
        let gone = try CLI.run(["contacts", "get", ids[2], "--offline", "--json", "--db", agent.db])
        #expect(gone.stdout.contains(#""state":"tombstoned""#) || gone.status != 0, "\(gone.stdout)")
    }

    /// One puller at a time: a second exits 5 naming the one that pulls.
    @Test func aSecondPullerIsRefusedNamingTheFirst() async throws {
        let url = try await TeamWorkerTests.freshStore()
        var bare = url
        bare.password = nil
        let simulator = try await Self.simulator(contacts: 3)
        defer { Task { await simulator.stop() } }
        let store = try await TeamStore.open(url)
        defer { Task { await store.close() } }
        let lease = try await store.holdPuller(as: "puller-one.example:42")
        let puller = try Workspace(contacts: 0)
        let second = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync", "--store", bare.description], db: puller.db, simulator: simulator),
            environment: ["INTERCOM_ACCESS_TOKEN": simulator.accessToken, "PGPASSWORD": url.password ?? ""])
        #expect(second.status == 5 && second.stderr.contains("puller-one.example:42"), "\(second.stderr)")
        await lease.release()
        let third = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync", "--store", bare.description], db: puller.db, simulator: simulator),
            environment: ["INTERCOM_ACCESS_TOKEN": simulator.accessToken, "PGPASSWORD": url.password ?? ""])
        #expect(third.status == 0, "\(third.stderr)")
    }
}
