import Foundation
import IntercomSimulator
import IntercomSyncTeam
import Testing

@testable import IntercomSync

/// An agent's mirror that follows the team's store: it stages offline as any mirror does,
/// `outbox flush` pushes its entries into the team's outbox with no Intercom token, a flush
/// worker sends them, and the next `sync` brings back how they ended. The real binary, the
/// simulator and the test cluster (a database of its own for each test).
@Suite(
    .enabled(
        if: ProcessInfo.processInfo.environment["INTERCOM_SYNC_TEST_STORE"] != nil,
        "INTERCOM_SYNC_TEST_STORE is not set: scripts/test starts a PostgreSQL cluster for these tests"),
    .serialized)
struct TeamAgentTests {
    /// A team: a store whose replica holds the simulator's contacts, and what an agent runs
    /// with (the store's URL without its password, and the password in PGPASSWORD only).
    struct Team {
        var url: TeamStoreURL
        var bare: String
        var agent: [String: String]
        var store: TeamStore
        var simulator: IntercomSimulator

        init(contacts: Int, name: String = #function) async throws {
            url = try await TeamWorkerTests.freshStore(name)
            var unprotected = url
            unprotected.password = nil
            bare = unprotected.description
            agent = ["PGPASSWORD": url.password ?? ""]
            simulator = try await SyncCommandTests.simulator(contacts: contacts)
            store = try await TeamStore.open(url)
            try await store.storeContacts(await simulator.workspace.exportContacts(), fetchedAt: 1)
        }

        /// A new agent's mirror, following the store.
        func newAgent() async throws -> Workspace {
            let workspace = try Workspace(contacts: 0)
            let synced = try await CLI.runOffPool(["sync", "--upstream", bare, "--db", workspace.db], environment: agent)
            precondition(synced.status == 0, synced.stderr)
            return workspace
        }

        /// One flush worker, run to its end.
        func drain() async throws {
            let worker = TeamWorkerTests.worker("drain", store: url, simulator: simulator)
            let run = try await CLI.runOffPool(worker.arguments, environment: worker.environment)
            #expect(run.status == 0, "\(run.stderr)")
        }

        func stop() async {
            await store.close()
            await simulator.stop()
        }
    }

    static func json(_ text: String) throws -> Any { try JSONSerialization.jsonObject(with: Data(text.utf8)) }

    static func entries(_ workspace: Workspace) throws -> [[String: Any]] {
        let list = try CLI.run(["outbox", "list", "--json", "--db", workspace.db])
        return try #require(try json(list.stdout) as? [[String: Any]], "\(list.stdout)\(list.stderr)")
    }

    @Test func anAgentPushesItsOutboxAndLearnsHowItEnded() async throws {
        let team = try await Team(contacts: 3)
        defer { Task { await team.stop() } }
        let ids = await team.simulator.workspace.contactIDs()
        let agent = try await team.newAgent()
        let db = ["--db", agent.db]
        let created = try CLI.run(["contacts", "create", "--email", "new@example.com", "--name", "New", "--json"] + db)
        #expect(created.status == 0, "\(created.stderr)")
        let localID = try #require((try Self.json(created.stdout) as? [String: Any])?["id"] as? String)
        for command in [
            ["messages", "send", "--to", localID, "--body", "Welcome aboard"],
            ["contacts", "update", ids[0], "--name", "Edited Name"],
            ["contacts", "note", ids[1], "Called about the renewal"],
            ["contacts", "tag", ids[2], "VIP"],
        ] {
            let staged = try CLI.run(command + db)
            #expect(staged.status == 0, "\(command): \(staged.stderr)")
        }

        // No Intercom token: the mirror pushes to the store it follows.
        let pushed = try await CLI.runOffPool(["outbox", "flush"] + db, environment: team.agent)
        #expect(pushed.status == 0, "\(pushed.stderr)")
        #expect(pushed.stdout.contains("pushed 5 entries to the team's outbox"), "\(pushed.stdout)")
        #expect(!pushed.stdout.contains(team.url.password ?? "-") && !pushed.stderr.contains(team.url.password ?? "-"))
        let again = try await CLI.runOffPool(["outbox", "flush", "--json"] + db, environment: team.agent)
        #expect(again.stdout.contains(#""pushed":0"#), "\(again.stdout)")
        #expect(try Self.entries(agent).allSatisfy { $0["state"] as? String == "pushed" })
        #expect(try await team.store.outboxEntries().count == 5, "a second push adds nothing")

        try await team.drain()
        let synced = try await CLI.runOffPool(["sync"] + db, environment: team.agent)
        #expect(synced.status == 0, "\(synced.stderr)")
        #expect(synced.stdout.contains("5 pushed entries settled"), "\(synced.stdout)")
        let states = try Self.entries(agent).compactMap { $0["state"] as? String }
        #expect(states == Array(repeating: "sent", count: 5), "\(states)")

        let contact = try CLI.run(["contacts", "get", "new@example.com", "--offline", "--json"] + db)
        let body = try #require((try Self.json(contact.stdout) as? [String: Any])?["contact"] as? [String: Any])
        let newID = try #require(body["id"] as? String)
        #expect(newID != localID && newID.count == 24, "the contact took its Intercom id: \(newID)")
        let onIntercom = try await TeamWorkerTests.contacts(team.simulator)
        #expect(onIntercom.values.filter { $0["email"]?.string == "new@example.com" }.count == 1)
        #expect(onIntercom[ids[0]]?["name"]?.string == "Edited Name")
        #expect(onIntercom[ids[1]]?["notes"]?["total_count"]?.int == 1)
        let messages = try await team.simulator.workspace.sentMessages().compactMap { try JSONValue(jsonText: $0) }
        #expect(messages.filter { $0["body"]?.string == "Welcome aboard" && $0["to"]?["id"]?.string == newID }.count == 1)
        let edited = try CLI.run(["contacts", "get", ids[0], "--offline", "--json"] + db)
        #expect(
            edited.stdout.contains(#""name":"Edited Name""#) && edited.stdout.contains(#""pending_edits":[]"#), "\(edited.stdout)"
        )
    }

    /// Staged while the store is out of reach, kept, and pushed once it is back.
    @Test func anAgentStagesWhileTheStoreIsDownAndPushesLater() async throws {
        let team = try await Team(contacts: 1)
        defer { Task { await team.stop() } }
        let agent = try await team.newAgent()
        let db = ["--db", agent.db]
        #expect(try CLI.run(["contacts", "create", "--email", "later@example.com"] + db).status == 0)
        var closed = try TeamStoreURL(team.bare)
        closed.port = 1
        let down = try await CLI.runOffPool(["outbox", "flush", "--upstream", closed.description] + db, environment: team.agent)
        #expect(down.status == 4 && down.stderr.contains("could not be reached"), "\(down.stderr)")
        #expect(try Self.entries(agent).map { $0["state"] as? String } == ["pending"])
        let back = try await CLI.runOffPool(["outbox", "flush"] + db, environment: team.agent)
        #expect(back.status == 0 && back.stdout.contains("pushed 1 entry"), "\(back.stdout)\(back.stderr)")
        try await team.drain()
        #expect(try await CLI.runOffPool(["sync"] + db, environment: team.agent).status == 0)
        #expect(try Self.entries(agent).map { $0["state"] as? String } == ["sent"])
    }

    /// Two agents create a contact of the same email offline: Intercom gets one contact, both
    /// mirrors take its id, and the second agent's name, which differs, waits as a conflict.
    @Test func twoAgentsCreatingTheSameEmailGetOneContact() async throws {
        let team = try await Team(contacts: 1)
        defer { Task { await team.stop() } }
        let ann = try await team.newAgent()
        let bob = try await team.newAgent()
        #expect(
            try CLI.run(["contacts", "create", "--email", "same@example.com", "--name", "Ann's", "--db", ann.db]).status == 0)
        #expect(
            try CLI.run(["contacts", "create", "--email", "same@example.com", "--name", "Bob's", "--db", bob.db]).status == 0)
        for agent in [ann, bob] {
            #expect(try await CLI.runOffPool(["outbox", "flush", "--db", agent.db], environment: team.agent).status == 0)
        }
        try await team.drain()
        var ids: [String] = []
        for agent in [ann, bob] {
            #expect(try await CLI.runOffPool(["sync", "--db", agent.db], environment: team.agent).status == 0)
            let got = try CLI.run(["contacts", "get", "same@example.com", "--offline", "--json", "--db", agent.db])
            let contact = (try Self.json(got.stdout) as? [String: Any])?["contact"] as? [String: Any]
            ids.append(try #require(contact?["id"] as? String, "\(got.stderr)"))
        }
        #expect(Set(ids).count == 1 && ids[0].count == 24, "\(ids)")
        let onIntercom = try await TeamWorkerTests.contacts(team.simulator)
        #expect(onIntercom.values.filter { $0["email"]?.string == "same@example.com" }.count == 1)
        let conflicts = try CLI.run(["outbox", "list", "--state", "conflict", "--json", "--db", bob.db])
        #expect(conflicts.stdout.contains("Bob's") && conflicts.stdout.contains("Ann's"), "\(conflicts.stdout)")
    }

    /// The workers spend one rate budget, kept in the store: a worker that starts when the
    /// store says the other workers spent the window waits for its reset before its first
    /// request.
    @Test func aWorkerWaitsOutAWindowTheOthersSpent() async throws {
        let team = try await Team(contacts: 1)
        defer { Task { await team.stop() } }
        let ids = await team.simulator.workspace.contactIDs()
        let agent = try await team.newAgent()
        let db = ["--db", agent.db]
        let staged = try CLI.run(["messages", "send", "--to", ids[0], "--body", "After the reset"] + db)
        #expect(staged.status == 0, "\(staged.stderr)")
        let pushed = try await CLI.runOffPool(["outbox", "flush"] + db, environment: team.agent)
        #expect(pushed.status == 0, "\(pushed.stderr)")

        // The simulator's clock stands still: the wait is read on this one. A slower machine
        // only makes the drain longer.
        let started = Date()
        let reset = started.timeIntervalSince1970.rounded(.up) + 6
        _ = try await team.store.exchange(RateLimitGovernor.Budget(limit: 1667, remaining: 0, reset: reset))
        try await team.drain()
        let drained = Date().timeIntervalSince1970
        #expect(drained >= reset, "the worker sent before the window's reset (\(reset - drained) s early)")
        #expect(await team.simulator.workspace.requestLog().contains { $0.method == "POST" && $0.path == "/messages" })
    }

}
