import Foundation
import IntercomSyncTeam
import Testing

@testable import IntercomSync

/// `sync --upstream`: an agent's mirror follows the team's store in PostgreSQL, with no
/// Intercom token and no request to Intercom. Runs against the cluster `scripts/test` starts
/// (its own database of the cluster's, which no other test uses).
@Suite(
    .enabled(
        if: ProcessInfo.processInfo.environment["INTERCOM_SYNC_TEST_STORE"] != nil,
        "INTERCOM_SYNC_TEST_STORE is not set: scripts/test starts a PostgreSQL cluster for these tests"),
    .serialized)
struct UpstreamCommandTests {
    @Test func aMirrorFollowsTheTeamStoreWithNoIntercomToken() async throws {
        let url = try TeamStoreURL(try #require(ProcessInfo.processInfo.environment["INTERCOM_SYNC_TEST_STORE"]))
        let password = try #require(url.password)
        let store = try await TeamStore.open(url)
        let run = UUID().uuidString.prefix(8).lowercased()
        let bodies = (1...40).map {
            #"{"type":"contact","id":"\#(run)-\#($0)","role":"user","email":"\#(run)-\#($0)@example.com","name":"Agent \#($0)","created_at":1,"updated_at":\#(100 + $0)}"#
        }
        try await store.storeContacts(bodies, fetchedAt: 1)
        try await store.tombstoneContacts(["\(run)-40"], at: 2)
        let live = try await store.contactChanges(since: 0, limit: 1_000_000).filter { !$0.tombstoned && $0.body != nil }.count
        await store.close()

        let workspace = try Workspace(contacts: 0)
        var unprotected = url
        unprotected.password = nil
        let arguments = ["sync", "--upstream", "\(unprotected.description)", "--db", workspace.db]
        let followed = try await CLI.runOffPool(arguments, environment: ["PGPASSWORD": password])
        #expect(followed.status == 0, "\(followed.stderr)")
        #expect(followed.stdout.contains("followed postgres://") && followed.stdout.contains("no request to Intercom"))
        #expect(!followed.stdout.contains(password) && !followed.stderr.contains(password))
        let query = try CLI.run(["contacts", "query", "--all", "--format", "ndjson", "--db", workspace.db])
        #expect(query.stdout.split(separator: "\n").count == live, "\(query.stderr)")
        let again = try await CLI.runOffPool(arguments + ["--json"], environment: ["PGPASSWORD": password])
        #expect(again.stdout.contains(#""changes":0"#), "\(again.stdout)")

        // A new mirror for a store that cannot be reached (this one follows its own store).
        var closed = unprotected
        closed.port = 1
        let newcomer = try Workspace(contacts: 0)
        let unreachable = try await CLI.runOffPool(
            ["sync", "--upstream", closed.description, "--db", newcomer.db], environment: ["PGPASSWORD": password])
        #expect(unreachable.status == 4 && unreachable.stderr.contains("could not be reached"), "\(unreachable.stderr)")
        #expect(!unreachable.stderr.contains(password))
        #expect(!FileManager.default.fileExists(atPath: newcomer.db), "no mirror is made without a store to follow")
    }
}
