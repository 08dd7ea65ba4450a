import Foundation
import IntercomSimulator
import Testing

@testable import IntercomSync

/// A mirror belongs to the workspace it was first synced from: a walk, a flush or a refresh
/// against another, or a walk that would empty it, stores nothing until told to.
@Suite(.serialized) struct WorkspaceBindingTests {
    /// Waits until the wall clock enters its next second: a walk spares the contacts fetched
    /// in the second it began, so a later walk must begin in a later one.
    static func untilTheNextSecond() async throws {
        let now = Date().timeIntervalSince1970
        try await Task.sleep(for: .seconds(now.rounded(.down) + 1 - now) + .milliseconds(20))
    }

    @Test func aForeignOrEmptyWalkTombstonesNothing() async throws {
        let simulator = try await SyncCommandTests.simulator(contacts: 300)
        defer { Task { await simulator.stop() } }
        let workspace = try Workspace(contacts: 0)
        let token = ["INTERCOM_ACCESS_TOKEN": simulator.accessToken]
        let sync = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync"], db: workspace.db, simulator: simulator), environment: token)
        try #require(sync.status == 0, "\(sync.stderr)")
        #expect(try CLI.contactCounts(workspace.db)["synced"] == 300)

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
        #expect(try CLI.contactCounts(workspace.db)["synced"] == 300)
        // A refresh asks the foreign server too, whose 404 would tombstone the contact.
        let id = await simulator.workspace.contactIDs()[0]
        let refresh = try await CLI.runOffPool(
            ["contacts", "get", id, "--refresh", "--db", workspace.db, "--base-url", foreign.baseURL], environment: token)
        #expect(refresh.status == 1)
        #expect(refresh.stderr.contains("workspace another"), "\(refresh.stderr)")
        #expect(refresh.stderr.contains("`intercom-sync sync --rebind`"), "a flag `contacts get` has not: \(refresh.stderr)")
        #expect(try CLI.contactCounts(workspace.db)["synced"] == 300, "the foreign 404 tombstoned nothing")

        // A walk spares contacts fetched in the second it began: let the clock pass the first sync's.
        try await Self.untilTheNextSecond()
        let massDelete = try await run(sameName, ["--rebind"])
        #expect(massDelete.status == 1)
        #expect(massDelete.stderr.contains("tombstone 300") && massDelete.stderr.contains("--allow-mass-delete"))
        #expect(try CLI.contactCounts(workspace.db)["synced"] == 300, "nothing was tombstoned")

        let confirmed = try await run(sameName, ["--allow-mass-delete"])
        #expect(confirmed.status == 0, "\(confirmed.stderr)")
        #expect(confirmed.stdout.contains("300 tombstoned"))

        // Back to the real workspace: refused until rebound, and then the walk brings all back.
        let back = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync", "--full"], db: workspace.db, simulator: simulator), environment: token)
        #expect(back.status == 1)
        // Only an answer fetched after the tombstone brings a contact back.
        try await Self.untilTheNextSecond()
        let rebound = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync", "--full", "--rebind"], db: workspace.db, simulator: simulator),
            environment: token)
        #expect(rebound.status == 0, "\(rebound.stderr)")
        #expect(try CLI.contactCounts(workspace.db)["synced"] == 300)
    }
}
