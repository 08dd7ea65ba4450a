import Foundation
import IntercomSimulator
import Testing

@testable import IntercomSync

/// What the commands that reach Intercom do when the server misdirects them, never answers or
/// cannot be reached: the token goes nowhere else, each gives up in bounded time with exit 4, and
/// nothing stored is lost.
@Suite(.serialized) struct ConnectionFailureTests {
    /// A port on 127.0.0.1 that nothing listens on.
    static func closedPort() throws -> Int {
        try SilentServer().port  // Closed again as the server goes.
    }

    @Test func theTokenNeverFollowsARedirect() async throws {
        let target = try await StubServer.start { _, _ in StubServer.Answer(status: 200, body: "{}") }
        defer { Task { await target.stop() } }
        let redirector = try await StubServer.start { _, path in
            StubServer.Answer(status: 302, headers: ["Location": "http://localhost:\(target.port)\(path)"])
        }
        defer { Task { await redirector.stop() } }
        let workspace = try Workspace(contacts: 0)
        let token = "tok_redirect_\(UUID().uuidString)"
        for command in [["sync", "--full"], ["contacts", "get", "6762f0d01bb69f9f2193bb7d", "--refresh"]] {
            let result = try await CLI.runOffPool(
                command + ["--db", workspace.db, "--base-url", redirector.baseURL], environment: ["INTERCOM_ACCESS_TOKEN": token])
            #expect(result.status != 0, "\(command)")
            #expect(result.stderr.contains("redirect") && result.stderr.contains("never follows"), "\(result.stderr)")
            #expect(!result.stderr.contains(token) && !result.stdout.contains(token))
        }
        #expect(!redirector.requests.isEmpty)
        #expect(redirector.requests.allSatisfy { $0.authorization == "Bearer \(token)" })
        #expect(target.requests.isEmpty, "nothing, and so no token, reached the address the redirect named")
    }

    @Test func aFlushThatCannotReachIntercomSaysSoAndKeepsEverything() async throws {
        let workspace = try Workspace(contacts: 10)
        let db = ["--db", workspace.db]
        #expect(try CLI.run(["contacts", "create", "--email", "kept@example.com"] + db).status == 0)
        try Data("email\nimported@example.com\n".utf8).write(to: workspace.folder.appendingPathComponent("in.csv"))
        let closed = "http://127.0.0.1:\(try Self.closedPort())"
        let token = ["INTERCOM_ACCESS_TOKEN": "tok_offline"]

        let flush = try await CLI.runOffPool(["outbox", "flush", "--base-url", closed] + db, environment: token)
        #expect(flush.status == 4, "\(flush.stderr)")
        #expect(flush.stderr.contains("could not be reached") && flush.stderr.contains("1 kept"), "\(flush.stderr)")
        #expect(!flush.stderr.contains("100%"))
        let push = try await CLI.runOffPool(
            ["contacts", "import", workspace.folder.appendingPathComponent("in.csv").path, "--push", "--base-url", closed]
                + db, environment: token)
        #expect(push.status == 4, "\(push.stderr)")
        #expect(push.stderr.contains("2 kept"), "\(push.stderr)")
        #expect(try CLI.contactCounts(workspace.db)["pending"] == 2)
        let list = try CLI.run(["outbox", "list", "--json"] + db)
        #expect(list.stdout.contains("\"state\":\"pending\"") && !list.stdout.contains("\"state\":\"unknown\""))
    }

    /// An Intercom that answers every request with a 5xx, past the retries: exit 4, run again
    /// later, and the staged edit waits.
    @Test func aFlushMeetingOnlyServerErrorsExitsFourAndKeepsEverything() async throws {
        let (simulator, workspace, token) = try await OutboxCommandTests.synced(contacts: 2)
        defer { Task { await simulator.stop() } }
        let id = await simulator.workspace.contactIDs()[0]
        #expect(try CLI.run(["contacts", "update", id, "--name", "Kept", "--db", workspace.db]).status == 0)
        var faults = FaultPlan()
        faults.serverErrorRate = 1
        await simulator.workspace.setFaults(faults)
        let flush = try await CLI.runOffPool(
            SyncCommandTests.arguments(["outbox", "flush"], db: workspace.db, simulator: simulator), environment: token)
        #expect(flush.status == 4, "\(flush.stderr)")
        #expect(flush.stderr.contains("server errors"), "\(flush.stderr)")
        let list = try CLI.run(["outbox", "list", "--json", "--db", workspace.db])
        #expect(list.stdout.contains("\"state\":\"pending\""), "\(list.stdout)")
    }

    @Test func aServerThatNeverAnswersIsGivenUpAfterTwoTimeouts() async throws {
        let silent = try SilentServer()
        let workspace = try Workspace(contacts: 10)
        let db = ["--db", workspace.db]
        #expect(try CLI.run(["contacts", "create", "--email", "kept@example.com"] + db).status == 0)
        let token = ["INTERCOM_ACCESS_TOKEN": "tok_silent"]
        for command in [["outbox", "flush"], ["sync"]] {
            let result = try await CLI.runOffPool(
                command + ["--base-url", silent.baseURL, "--timeout", "1"] + db, environment: token)
            #expect(result.status == 4, "\(command): \(result.stderr)")
            #expect(result.stderr.contains("no answer within 1 s (gave up after 2 attempts"), "\(result.stderr)")
        }
        #expect(try CLI.contactCounts(workspace.db) == ["synced": 10, "pending": 1, "tombstoned": 0])
    }

    @Test func networkCommandsLeaveNoFoldersOutsideTheirOwn() async throws {
        let simulator = try await SyncCommandTests.simulator(contacts: 5)
        defer { Task { await simulator.stop() } }
        let workspace = try Workspace(contacts: 0)
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("home-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: home) }
        let environment = [
            "INTERCOM_ACCESS_TOKEN": simulator.accessToken, "HOME": home.path,
            "XDG_DATA_HOME": home.path + "/.local/share", "XDG_CACHE_HOME": home.path + "/.cache",
        ]
        let sync = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync", "--full"], db: workspace.db, simulator: simulator),
            environment: environment)
        #expect(sync.status == 0, "\(sync.stderr)")
        let id = await simulator.workspace.contactIDs()[0]
        let get = try await CLI.runOffPool(
            ["contacts", "get", id, "--db", workspace.db, "--base-url", simulator.baseURL], environment: environment)
        #expect(get.status == 0, "\(get.stderr)")
        // A flush sends each create on a connection of its own.
        let db = ["--db", workspace.db]
        #expect(try CLI.run(["contacts", "create", "--email", "fresh.session@example.com"] + db).status == 0)
        let flush = try await CLI.runOffPool(
            ["outbox", "flush", "--base-url", simulator.baseURL] + db, environment: environment)
        #expect(flush.status == 0, "\(flush.stderr)")
        let left = FileManager.default.enumerator(atPath: home.path)?.allObjects as? [String] ?? []
        #expect(left.isEmpty, "left behind in HOME: \(left)")
    }
}
