import Foundation
import IntercomSimulator
import IntercomSyncTeam
import PostgresNIO
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

    /// A mirror is either pulled from Intercom or follows one store, and says so when asked to
    /// be the other, changing nothing: a puller's mirror does not follow a store, an agent's does
    /// not follow a second store nor pull for one, and an agent never makes a store where its
    /// URL points. A worker cannot move the team's store to another server.
    @Test func aMirrorKeepsToWhatItFollows() async throws {
        let team = try await Team(contacts: 3)
        defer { Task { await team.stop() } }
        let other = try await Team(contacts: 2, name: "otherstore")
        defer { Task { await other.stop() } }
        let agent = try await team.newAgent()
        let before = try CLI.contactCounts(agent.db)

        let elsewhere = try await CLI.runOffPool(["sync", "--upstream", other.bare, "--db", agent.db], environment: team.agent)
        #expect(elsewhere.status == 1 && elsewhere.stderr.contains("cannot follow another store"), "\(elsewhere.stderr)")
        #expect(try CLI.contactCounts(agent.db) == before, "nothing of the other store came in")
        let pulling = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync", "--store", team.bare], db: agent.db, simulator: team.simulator),
            environment: team.agent.merging(["INTERCOM_ACCESS_TOKEN": team.simulator.accessToken]) { $1 })
        #expect(pulling.status == 1 && pulling.stderr.contains("it is an agent's"), "\(pulling.stderr)")

        let puller = try Workspace(contacts: 0)
        let token = ["INTERCOM_ACCESS_TOKEN": team.simulator.accessToken]
        let pulled = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync"], db: puller.db, simulator: team.simulator), environment: token)
        #expect(pulled.status == 0, "\(pulled.stderr)")
        let pulledCounts = try CLI.contactCounts(puller.db)
        let following = try await CLI.runOffPool(["sync", "--upstream", other.bare, "--db", puller.db], environment: other.agent)
        #expect(following.status == 1 && following.stderr.contains("pulled from Intercom"), "\(following.stderr)")
        #expect(try CLI.contactCounts(puller.db) == pulledCounts)

        // A database that holds no store: refused, and left without a table of the store's.
        var empty = try await TeamWorkerTests.freshStore("notastore")
        let fresh = try Workspace(contacts: 0)
        let password = empty.password
        empty.password = nil
        let mistyped = try await CLI.runOffPool(
            ["sync", "--upstream", empty.description, "--db", fresh.db], environment: ["PGPASSWORD": password ?? ""])
        #expect(mistyped.status == 1 && mistyped.stderr.contains("holds no team store"), "\(mistyped.stderr)")
        #expect(!FileManager.default.fileExists(atPath: fresh.db), "no mirror is made without a store to follow")
        empty.password = password
        let tables = try await TeamTestTables.count(in: empty)
        #expect(tables == 0, "nothing was written in a database that is not a store")

        let (arguments, environment) = TeamWorkerTests.worker("mover", store: team.url, simulator: team.simulator)
        let moving = try await CLI.runOffPool(arguments + ["--rebind"], environment: environment)
        #expect(moving.status == 2 && moving.stderr.contains("--rebind does not go with --store"), "\(moving.stderr)")
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

/// The tables of a database on the test cluster.
enum TeamTestTables {
    static func count(in url: TeamStoreURL) async throws -> Int {
        let connection = try await PostgresConnection.connect(
            configuration: PostgresConnection.Configuration(
                host: url.host, port: url.port, username: url.username, password: url.password, database: url.database,
                tls: .disable), id: 1, logger: TeamWorkerTests.logger)
        do {
            var count = 0
            for try await found in try await connection.query(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", logger: TeamWorkerTests.logger
            ).decode(Int64.self) {
                count = Int(found)
            }
            try await connection.close()
            return count
        } catch {
            try? await connection.close()
            throw error
        }
    }
}
