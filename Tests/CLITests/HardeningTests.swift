import Foundation
import GRDB
import IntercomSimulator
import Testing

@testable import IntercomSync

/// What a careful user, and someone out to break it, would try: each test fails without the fix
/// it guards. The bad inputs that need no server are in `Fixtures/bad-input/`.
@Suite(.serialized) struct HardeningTests {
    static func status(_ db: String) throws -> [String: Int] {
        let status = try CLI.run(["status", "--json", "--db", db])
        let document = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        return document?["contacts"] as? [String: Int] ?? [:]
    }

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

    @Test func controlCharactersInContactsNeverReachTheTerminal() async throws {
        let simulator = try await SyncCommandTests.simulator(contacts: 3)
        defer { Task { await simulator.stop() } }
        let evil = "Evil \u{1b}[2J\u{1b}]0;pwned\u{07}\rfake\u{202e}gnp.exe"
        let id = await simulator.workspace.contactIDs()[0]
        let fields = JSONValue.object(["name": .string(evil)]).jsonText
        try await simulator.workspace.edit(id: id, fieldsJSON: fields)
        let workspace = try Workspace(contacts: 0)
        let token = ["INTERCOM_ACCESS_TOKEN": simulator.accessToken]
        let sync = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync"], db: workspace.db, simulator: simulator), environment: token)
        #expect(sync.status == 0, "\(sync.stderr)")
        let db = ["--db", workspace.db]
        let shown = [
            try CLI.run(["contacts", "query", "--search", "evil"] + db),
            try CLI.run(["contacts", "get", id, "--offline"] + db),
        ]
        for result in shown {
            #expect(result.status == 0, "\(result.stderr)")
            let raw = Set(result.stdout.unicodeScalars.map(\.value))
            #expect(raw.isDisjoint(with: [0x1b, 0x07, 0x0d, 0x202e]), "\(result.stdout.debugDescription)")
            #expect(result.stdout.contains(#"Evil \u001b[2J\u001b]0;pwned\u0007\r"#), "\(result.stdout)")
        }
        // Machine-readable output stays exact.
        let json = try CLI.run(["contacts", "get", id, "--offline", "--json"] + db)
        let document = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect((document?["contact"] as? [String: Any])?["name"] as? String == evil)
        let csv = try CLI.run(["contacts", "query", "--search", "evil", "--format", "csv"] + db)
        #expect(csv.stdout.contains(evil))
    }

    @Test func aForeignOrEmptyWalkTombstonesNothing() async throws {
        let simulator = try await SyncCommandTests.simulator(contacts: 300)
        defer { Task { await simulator.stop() } }
        let workspace = try Workspace(contacts: 0)
        let token = ["INTERCOM_ACCESS_TOKEN": simulator.accessToken]
        let sync = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync"], db: workspace.db, simulator: simulator), environment: token)
        try #require(sync.status == 0, "\(sync.stderr)")
        #expect(try Self.status(workspace.db)["synced"] == 300)

        func emptyWalk(workspaceID: String) async throws -> StubServer {
            try await StubServer.start { _, path in
                if path == "/me" {
                    return StubServer.Answer(status: 200, body: #"{"type":"admin","id":"1","app":{"id_code":"\#(workspaceID)"}}"#)
                }
                if path.hasPrefix("/contacts/"), path != "/contacts/search" {
                    return StubServer.Answer(status: 404, body: #"{"type":"error.list","errors":[{"code":"not_found"}]}"#)
                }
                if path == "/segments" {
                    return StubServer.Answer(status: 200, body: #"{"type":"segment.list","segments":[]}"#)
                }
                return StubServer.Answer(status: 200, body: #"{"type":"list","data":[],"total_count":0}"#)
            }
        }
        let foreign = try await emptyWalk(workspaceID: "another")
        defer { Task { await foreign.stop() } }
        let sameName = try await emptyWalk(workspaceID: SimulatedWorkspace.defaultWorkspaceID)
        defer { Task { await sameName.stop() } }
        func run(_ server: StubServer, _ flags: [String]) async throws -> CLI.Result {
            try await CLI.runOffPool(
                ["sync", "--full", "--db", workspace.db, "--base-url", server.baseURL] + flags, environment: token)
        }

        let refused = try await run(foreign, [])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("workspace another") && refused.stderr.contains("--rebind"), "\(refused.stderr)")
        let otherHost = try await run(sameName, [])
        #expect(otherHost.status == 1)
        #expect(otherHost.stderr.contains("--rebind"), "\(otherHost.stderr)")
        #expect(try Self.status(workspace.db)["synced"] == 300)
        // A refresh asks the foreign server too, whose 404 would tombstone the contact.
        let id = await simulator.workspace.contactIDs()[0]
        let refresh = try await CLI.runOffPool(
            ["contacts", "get", id, "--refresh", "--db", workspace.db, "--base-url", foreign.baseURL], environment: token)
        #expect(refresh.status == 1)
        #expect(refresh.stderr.contains("workspace another"), "\(refresh.stderr)")
        #expect(try Self.status(workspace.db)["synced"] == 300, "the foreign 404 tombstoned nothing")

        // A walk spares contacts fetched in the second it began: let the clock pass the first sync's.
        try await Task.sleep(for: .seconds(1.1))
        let massDelete = try await run(sameName, ["--rebind"])
        #expect(massDelete.status == 1)
        #expect(massDelete.stderr.contains("tombstone 300") && massDelete.stderr.contains("--allow-mass-delete"))
        #expect(try Self.status(workspace.db)["synced"] == 300, "nothing was tombstoned")

        let confirmed = try await run(sameName, ["--allow-mass-delete"])
        #expect(confirmed.status == 0, "\(confirmed.stderr)")
        #expect(confirmed.stdout.contains("300 tombstoned"))

        // Back to the real workspace: refused until rebound, and then the walk brings all back.
        let back = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync", "--full"], db: workspace.db, simulator: simulator), environment: token)
        #expect(back.status == 1)
        // Only an answer fetched after the tombstone brings a contact back.
        try await Task.sleep(for: .seconds(1.1))
        let rebound = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync", "--full", "--rebind"], db: workspace.db, simulator: simulator),
            environment: token)
        #expect(rebound.status == 0, "\(rebound.stderr)")
        #expect(try Self.status(workspace.db)["synced"] == 300)
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
        #expect(try Self.status(workspace.db)["pending"] == 2)
        let list = try CLI.run(["outbox", "list", "--json"] + db)
        #expect(list.stdout.contains("\"state\":\"pending\"") && !list.stdout.contains("\"state\":\"unknown\""))
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
        #expect(try Self.status(workspace.db) == ["synced": 10, "pending": 1, "tombstoned": 0])
    }

    @Test func aBusyMirrorExitsFiveOrIsWaitedFor() async throws {
        let simulator = try await SyncCommandTests.simulator(contacts: 20)
        defer { Task { await simulator.stop() } }
        let workspace = try Workspace(contacts: 0)
        let token = ["INTERCOM_ACCESS_TOKEN": simulator.accessToken]
        let arguments = SyncCommandTests.arguments(["sync"], db: workspace.db, simulator: simulator)
        #expect(try await CLI.runOffPool(arguments, environment: token).status == 0)
        let mirror = try ContactMirror.open(at: workspace.db, mode: .existing)
        var lock: MirrorLock? = try MirrorLock.acquire(mirror, purpose: "a test holding the mirror")
        let busy = try await CLI.runOffPool(arguments, environment: token)
        #expect(busy.status == 5, "\(busy.stderr)")
        #expect(busy.stderr.contains("a test holding the mirror") && busy.stderr.contains("--wait"), "\(busy.stderr)")
        for command in [["outbox", "flush"], ["contacts", "import", "-"]] {
            let refused = try await CLI.runOffPool(
                command + ["--db", workspace.db, "--base-url", simulator.baseURL], environment: token,
                input: Data("email\nw@example.com\n".utf8))
            #expect(refused.status == 5, "\(command): \(refused.stderr)")
        }
        // With --wait, the sync waits for the holder to let go, then runs.
        let waiting = Task { try await CLI.runOffPool(arguments + ["--wait", "60"], environment: token) }
        try await Task.sleep(for: .milliseconds(500))
        withExtendedLifetime(lock) {}
        lock = nil
        let waited = try await waiting.value
        #expect(waited.status == 0, "\(waited.stderr)")
        // So does a flush: its --wait once went nowhere, and it was refused at once.
        lock = try MirrorLock.acquire(mirror, purpose: "a test holding the mirror")
        let flushing = Task {
            try await CLI.runOffPool(
                ["outbox", "flush", "--db", workspace.db, "--base-url", simulator.baseURL, "--wait", "60"],
                environment: token)
        }
        try await Task.sleep(for: .milliseconds(500))
        withExtendedLifetime(lock) {}
        lock = nil
        let flushed = try await flushing.value
        #expect(flushed.status == 0, "\(flushed.stderr)")
    }

    @Test func aDamagedSchemaIsCaughtOnOpenAndRepairedWithoutLosingAContact() throws {
        let workspace = try Workspace(contacts: 300)
        let db = ["--db", workspace.db]
        #expect(try CLI.run(["contacts", "create", "--email", "kept@example.com"] + db).status == 0)
        let queue = try DatabaseQueue(path: workspace.db)
        try queue.write { db in try db.execute(sql: "DROP TABLE contacts_fts; DROP INDEX contacts_by_email") }
        try queue.close()
        for command in [["status"], ["contacts", "query", "--search", "ana"], ["contacts", "create", "--email", "x@y.io"]] {
            let refused = try CLI.run(command + db)
            #expect(refused.status == 1, "\(command)")
            #expect(refused.stderr.contains("missing index contacts_by_email, table contacts_fts"), "\(refused.stderr)")
            #expect(refused.stderr.contains("doctor --repair"))
            #expect(!refused.stderr.contains("SELECT") && !refused.stderr.contains("INSERT"), "no SQL: \(refused.stderr)")
        }
        let check = try CLI.run(["doctor"] + db)
        #expect(check.status == 1 && check.stdout.contains("--repair"))
        let repaired = try CLI.run(["doctor", "--repair", "--json"] + db)
        #expect(repaired.status == 0, "\(repaired.stdout) \(repaired.stderr)")
        #expect(repaired.stdout.contains("\"sound\":true"))
        #expect(try Self.status(workspace.db) == ["synced": 300, "pending": 1, "tombstoned": 0])
        let search = try CLI.run(["contacts", "query", "--search", "kept", "--format", "ndjson"] + db)
        #expect(search.stdout.contains("kept@example.com"), "the full-text index was rebuilt from the contacts")
        #expect(try CLI.run(["outbox", "list", "--json"] + db).stdout.contains("kept@example.com"))

        let lost = try DatabaseQueue(path: workspace.db)
        try lost.write { db in try db.execute(sql: "DROP TABLE outbox") }
        try lost.close()
        let beyond = try CLI.run(["doctor", "--repair"] + db)
        #expect(beyond.status == 1)
        #expect(beyond.stderr.contains("lost table outbox, which cannot be rebuilt"), "\(beyond.stderr)")
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
