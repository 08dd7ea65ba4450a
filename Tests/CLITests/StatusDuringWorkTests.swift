import Foundation
import Testing

/// `status` and queries answer whatever else is happening to the mirror: while a first pull
/// loads it, after that pull was stopped, before there is any mirror, and after a reconcile.
@Suite(.serialized) struct StatusDuringWorkTests {
    static func document(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(text)")
    }

    static func synced(_ document: [String: Any]) -> Int {
        (document["contacts"] as? [String: Any])?["synced"] as? Int ?? -1
    }

    @Test func statusOnAFreshMachineSaysThereIsNoMirrorYet() throws {
        let workspace = try Workspace(contacts: 0)
        let data = workspace.folder.appendingPathComponent("fresh").path
        let environment = ["XDG_DATA_HOME": data]
        let text = try CLI.run(["status"], environment: environment)
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("none yet at \(data)/intercom-sync/mirror.sqlite"), "\(text.stdout)")
        #expect(text.stdout.contains("run `intercom-sync sync`"))
        let json = try CLI.run(["status", "--json"], environment: environment)
        #expect(json.status == 0, "\(json.stderr)")
        let document = try Self.document(json.stdout)
        #expect(document["exists"] as? Bool == false)
        #expect(Self.synced(document) == 0)
        #expect(document["last_reconcile_at"] is NSNull && document["full_pull"] is NSNull)
        for command in [["contacts", "query"], ["doctor"], ["outbox", "list"]] {
            let read = try CLI.run(command, environment: environment)
            #expect(read.status == 1, "\(command)")
            #expect(read.stderr.contains("no mirror here yet") && read.stderr.contains("intercom-sync sync"), "\(read.stderr)")
            #expect(!read.stderr.contains("does not exist"), "\(command): \(read.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: data), "status and reads create nothing")
    }

    @Test func aReconcileIsRecorded() async throws {
        let simulator = try await SyncCommandTests.simulator(contacts: 40)
        defer { Task { await simulator.stop() } }
        let workspace = try Workspace(contacts: 0)
        let token = ["INTERCOM_ACCESS_TOKEN": simulator.accessToken]
        let before = try Self.document(try CLI.run(["status", "--json", "--db", workspace.db]).stdout)
        #expect(before["last_reconcile_at"] is NSNull, "the key is there before any reconcile")
        let first = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync"], db: workspace.db, simulator: simulator), environment: token)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try Self.document(try CLI.run(["status", "--json", "--db", workspace.db]).stdout)["last_reconcile_at"] is NSNull)
        let reconcile = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync", "--reconcile"], db: workspace.db, simulator: simulator), environment: token)
        #expect(reconcile.status == 0, "\(reconcile.stderr)")
        let after = try Self.document(try CLI.run(["status", "--json", "--db", workspace.db]).stdout)
        #expect((after["last_reconcile_at"] as? Int ?? 0) >= 1_767_225_600, "\(after)")
        #expect(try !CLI.run(["status", "--db", workspace.db]).stdout.contains("last reconcile     never"))
    }

    /// A first pull large enough to load in bulk (its indexes deferred), slowed by the
    /// simulator's latency: status and queries answer while it runs, from what it has
    /// committed; stopped with Ctrl-C, it is reported as interrupted; the next sync finishes it.
    @Test func queriesAndStatusWorkDuringAFirstPullAndAfterItIsStopped() async throws {
        let simulator = try await SyncCommandTests.simulator(contacts: 25_000, latency: 100)
        defer { Task { await simulator.stop() } }
        let workspace = try Workspace(contacts: 0)
        let db = workspace.db
        let token = ["INTERCOM_ACCESS_TOKEN": simulator.accessToken]
        let sync = Process()
        sync.executableURL = CLI.binary
        sync.arguments = SyncCommandTests.arguments(["sync", "--concurrency", "2"], db: db, simulator: simulator)
        var environment = ProcessInfo.processInfo.environment.merging(token) { $1 }
        // A child stopped while it writes its coverage profile would leave a corrupt one.
        environment["LLVM_PROFILE_FILE"] =
            FileManager.default.temporaryDirectory.appendingPathComponent("intercom-sync-killed-%p.profraw").path
        sync.environment = environment
        sync.standardOutput = FileHandle.nullDevice
        sync.standardError = FileHandle.nullDevice
        try sync.run()

        // Watch until the pull has committed contacts; the pull takes tens of seconds.
        var during: [String: Any] = [:]
        while sync.isRunning {
            let status = try await CLI.runOffPool(["status", "--json", "--db", db])
            #expect(status.status == 0, "\(status.stderr)")
            #expect(!status.stderr.contains("read-only"), "\(status.stderr)")
            if status.status == 0, case let document = try Self.document(status.stdout),
                document["full_pull"] as? String == "in_progress", Self.synced(document) > 0
            {
                during = document
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        try #require(!during.isEmpty, "status saw the first pull in progress before it ended")
        #expect((during["busy_with"] as? String)?.hasPrefix("intercom-sync sync (pid") == true, "\(during)")
        let query = try await CLI.runOffPool(["contacts", "query", "--limit", "5", "--format", "json", "--db", db])
        #expect(query.status == 0, "\(query.stderr)")
        #expect(query.stderr.contains("loading this mirror"), "\(query.stderr)")
        #expect(try (Self.document(query.stdout)["contacts"] as? [Any])?.count == 5)
        let text = try await CLI.runOffPool(["status", "--db", db])
        #expect(text.status == 0 && text.stdout.contains("a first pull is in progress"), "\(text.stdout) \(text.stderr)")

        sync.interrupt()  // Ctrl-C.
        while sync.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        #expect(sync.terminationReason == .uncaughtSignal)
        let stopped = try await CLI.runOffPool(["status", "--db", db])
        #expect(stopped.status == 0, "\(stopped.stderr)")
        #expect(!stopped.stderr.contains("read-only"), "\(stopped.stderr)")
        #expect(
            stopped.stdout.contains("the first pull was interrupted; run `intercom-sync sync` to resume it"),
            "\(stopped.stdout)")
        let stoppedJSON = try Self.document(try await CLI.runOffPool(["status", "--json", "--db", db]).stdout)
        #expect(stoppedJSON["full_pull"] as? String == "interrupted" && stoppedJSON["busy_with"] is NSNull)

        let resumed = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync", "--concurrency", "8"], db: db, simulator: simulator), environment: token)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let done = try Self.document(try await CLI.runOffPool(["status", "--json", "--db", db]).stdout)
        #expect(done["full_pull"] is NSNull && Self.synced(done) == 25_000, "\(done)")
        let anyName = try #require(
            (try Self.document(query.stdout)["contacts"] as? [[String: Any]])?.compactMap { $0["name"] as? String }.first)
        let search = try await CLI.runOffPool(["contacts", "query", "--search", anyName, "--db", db])
        #expect(search.status == 0 && search.stdout.contains(anyName), "\(search.stdout) \(search.stderr)")
    }
}
