import Foundation
import GRDB
import IntercomSimulator
import Testing

@testable import IntercomSync

/// `intercom-sync sync` and `contacts get` as a user runs them, against a simulator in this
/// process over loopback.
@Suite(.serialized) struct SyncCommandTests {
    /// A contact the mirror cannot store (a role it does not know, a time that is not a whole
    /// second, none at all) is left out and named; the rest of its page is stored, and the sync
    /// ends, rather than stopping at the same page on every run.
    @Test func aMalformedContactIsLeftOutAndNamedWhileTheRestIsStored() async throws {
        func contact(_ id: String, role: String = "user", updated: String = "1700000000") -> String {
            #"{"type":"contact","id":"\#(id)","role":"\#(role)","email":"\#(id)@example.com","created_at":1700000000,"updated_at":\#(updated)}"#
        }
        let page = [
            contact("good1"), contact("bad-role", role: "admin"), contact("good2"), contact("bad-time", updated: "null"),
            contact("good3"), contact("bad-float", updated: "1700000000.5"),
        ]
        let server = try await StubServer.start { method, path in
            switch path {
            case "/me":
                return StubServer.Answer(status: 200, body: #"{"type":"admin","id":"1","app":{"id_code":"w1"}}"#)
            case "/contacts" where method == "GET", "/contacts/search":
                // The list and every search answer the one page: a plan of one range, walked by search.
                return StubServer.Answer(
                    status: 200, body: #"{"type":"list","data":["# + page.joined(separator: ",") + #"],"total_count":6}"#)
            case "/segments":
                return StubServer.Answer(status: 200, body: #"{"type":"segment.list","segments":[]}"#)
            default:
                return StubServer.Answer(status: 200, body: #"{"type":"list","data":[],"total_count":0}"#)
            }
        }
        defer { Task { await server.stop() } }
        let workspace = try Workspace(contacts: 0)
        // By search (ranges), then by the list (one cursor).
        for (run, walk) in [["--full"], ["--full", "--concurrency", "1"]].enumerated() {
            let sync = try await CLI.runOffPool(
                ["sync", "--db", workspace.db, "--base-url", server.baseURL, "--json"] + walk,
                environment: ["INTERCOM_ACCESS_TOKEN": "tok_malformed"])
            #expect(sync.status == 0, "run \(run): \(sync.stderr)")
            #expect(sync.stderr.contains("3 contacts from Intercom could not be stored"), "\(sync.stderr)")
            #expect(sync.stderr.contains(#"bad-float: is malformed: "updated_at": 1700000000.5 is not a whole number"#))
            #expect(sync.stderr.contains(#"bad-role: is malformed: "role": "admin" is not one of the values"#))
            #expect(sync.stderr.contains("bad-role: ") && sync.stderr.contains("bad-time: "), "\(sync.stderr)")
            #expect(sync.stdout.contains(#""id":"bad-role""#), "\(sync.stdout)")
            #expect(try CLI.contactCounts(workspace.db)["synced"] == 3)
        }
    }

    static func simulator(contacts: Int, latency: Int = 0) async throws -> IntercomSimulator {
        var configuration = SimulatorConfiguration()
        configuration.seedContacts = contacts
        configuration.seed = 5
        configuration.accessToken = "tok_\(UUID().uuidString)"
        configuration.startTime = 1_767_225_600
        configuration.rateLimit = 1_000_000
        configuration.faults.latencyMilliseconds = latency
        return try await IntercomSimulator.start(configuration)
    }

    static func arguments(_ command: [String], db: String, simulator: IntercomSimulator) -> [String] {
        command + ["--db", db, "--base-url", simulator.baseURL]
    }

    @Test func syncThenIncrementalThenGet() async throws {
        let simulator = try await Self.simulator(contacts: 500)
        defer { Task { await simulator.stop() } }
        let workspace = try Workspace(contacts: 0)
        let token = ["INTERCOM_ACCESS_TOKEN": simulator.accessToken]
        let first = try await CLI.runOffPool(Self.arguments(["sync"], db: workspace.db, simulator: simulator), environment: token)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("full pull: 500 contacts fetched, 500 written, 0 tombstoned"))
        // "full pull: 500/500 (100%)", with the request rate before the share once a pass has run
        // a quarter of a second.
        #expect(first.stderr.contains(/full pull: 500\/500(, \d+ req\/s of \d+\/s)? \(100%\)/), "\(first.stderr)")

        let id = await simulator.workspace.contactIDs()[9]
        simulator.workspace.clock.advance(by: 600)
        try await simulator.workspace.edit(id: id, fieldsJSON: #"{"name": "Changed By CLI Test"}"#)
        let second = try await CLI.runOffPool(
            Self.arguments(["sync", "--json"], db: workspace.db, simulator: simulator), environment: token)
        #expect(second.status == 0, "\(second.stderr)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(second.stdout.utf8)) as? [String: Any])
        #expect(summary["passes"] as? [String] == ["incremental"])
        #expect(summary["written"] as? Int == 1)

        let refreshed = try await CLI.runOffPool(
            Self.arguments(["contacts", "get", id, "--refresh", "--json"], db: workspace.db, simulator: simulator),
            environment: token)
        #expect(refreshed.status == 0, "\(refreshed.stderr)")
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(refreshed.stdout.utf8)) as? [String: Any])
        let contact = try #require(answer["contact"] as? [String: Any])
        let mirror = try #require(answer["mirror"] as? [String: Any])
        #expect(contact["name"] as? String == "Changed By CLI Test")
        #expect(mirror["source"] as? String == "revalidated")
        #expect(mirror["etag"] as? String != nil)

        for result in [first, second, refreshed] {
            #expect(!result.stdout.contains(simulator.accessToken) && !result.stderr.contains(simulator.accessToken))
        }
    }

    @Test func refusedTokenSaysToLogInAgain() async throws {
        let simulator = try await Self.simulator(contacts: 5)
        defer { Task { await simulator.stop() } }
        let workspace = try Workspace(contacts: 0)
        let secret = "tok_not_valid_\(UUID().uuidString)"
        let result = try await CLI.runOffPool(
            Self.arguments(["sync", "--token", secret], db: workspace.db, simulator: simulator))
        #expect(result.status == 1)
        #expect(result.stderr.contains("401 unauthorized"))
        #expect(result.stderr.contains("log in again"))
        #expect(!result.stderr.contains(secret) && !result.stdout.contains(secret))
    }

    @Test func missingTokenIsNamed() throws {
        let workspace = try Workspace(contacts: 0)
        let result = try CLI.run(
            ["sync", "--db", workspace.db, "--base-url", "http://127.0.0.1:9"], environment: ["INTERCOM_ACCESS_TOKEN": ""])
        #expect(result.status == 1)
        #expect(result.stderr.contains("not connected to Intercom: run `intercom-sync auth login"))
    }

    /// Kill -9 of a partitioned, parallel pull at random moments; resuming must give the mirror
    /// an uninterrupted run gives (a pulled page commits with the cursor after it). The kills land between a tenth and nine
    /// tenths of a clean run's time, measured here, so they fall inside the pull on any machine.
    @Test func killedPullsResumeToTheSameMirror() async throws {
        let simulator = try await Self.simulator(contacts: 3_000, latency: 8)
        defer { Task { await simulator.stop() } }
        let token = ["INTERCOM_ACCESS_TOKEN": simulator.accessToken]
        let reference = try Workspace(contacts: 0)
        let started = Date()
        let clean = try await CLI.runOffPool(
            Self.arguments(["sync", "--concurrency", "8"], db: reference.db, simulator: simulator), environment: token)
        let cleanMilliseconds = Int(Date().timeIntervalSince(started) * 1000)
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(clean.stdout.contains("partitioned into"), "\(clean.stdout)")
        // Progress shows the request rate against the budget (1,000,000 a window here).
        #expect(clean.stderr.contains(" req/s of 100000/s"), "\(clean.stderr)")
        let expected = try Self.contents(of: reference.db)
        #expect(expected.count == 3_000)

        var generator = SystemRandomNumberGenerator()
        var schedule = CLI.KillSchedule(cleanRun: .milliseconds(cleanMilliseconds), from: 0.1, to: 0.9)
        var killedMidway = 0
        for trial in 0..<20 {
            let workspace = try Workspace(contacts: 0)
            let arguments = Self.arguments(["sync", "--concurrency", "8"], db: workspace.db, simulator: simulator)
            // One or two kills, then a run to the end.
            for _ in 0..<(trial % 2 + 1) {
                let delay = schedule.delay(using: &generator)
                let began = ContinuousClock.now
                let status = try await CLI.offPool { try CLI.runKilled(arguments, environment: token, after: delay) }
                if status == nil { killedMidway += 1 } else { schedule.finished(in: ContinuousClock.now - began) }
            }
            let finish = try await CLI.runOffPool(arguments, environment: token)
            #expect(finish.status == 0, "trial \(trial): \(finish.stderr)")
            #expect(try Self.contents(of: workspace.db) == expected, "trial \(trial)")
        }
        #expect(killedMidway >= 15, "most kills should land during the pull")
    }

    /// Every contact's id, state and body.
    static func contents(of path: String) throws -> [String: String] {
        let mirror = try ContactMirror.open(at: path, mode: .readOnly)
        defer { try? mirror.close() }
        return try mirror.writer.read { db in
            var rows: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, state, contact_body(body) AS body FROM contacts") {
                rows[row[0]] = (row[1] as String) + "|" + (row[2] as String)
            }
            return rows
        }
    }
}

extension CLI {
    /// When to kill a run: at a random share (`from` to `to`) of a clean run's time. A run that
    /// finishes before its kill shows the machine is faster now than when the clean run was
    /// timed (a loaded test suite is uneven), and its time becomes the measure.
    struct KillSchedule {
        private(set) var cleanRun: Duration
        let from: Double
        let to: Double

        init(cleanRun: Duration, from: Double, to: Double) {
            self.cleanRun = cleanRun
            self.from = from
            self.to = to
        }

        func delay(using generator: inout some RandomNumberGenerator) -> Duration {
            let milliseconds = Double(cleanRun / .milliseconds(1))
            return .milliseconds(Int(Double.random(in: (milliseconds * from)...(milliseconds * to), using: &generator)))
        }

        var cleanRunMilliseconds: Int { Int(cleanRun / .milliseconds(1)) }

        mutating func finished(in elapsed: Duration) {
            cleanRun = min(cleanRun, elapsed)
        }
    }

    /// Kill -9 trials of `outbox flush`: the first flushes run clean and are timed, and later
    /// ones are killed at a random moment between a tenth and nine tenths of a clean flush's
    /// time, so that the kills fall inside a flush on a slow machine too.
    struct FlushKills {
        private var clean = Duration.seconds(3_600)
        private var generator = SystemRandomNumberGenerator()
        private(set) var kills = 0
        /// The kills that landed before the flush ended.
        private(set) var midway = 0

        /// Runs a flush to its end; `clean`: it is timed as a clean flush.
        mutating func run(_ arguments: [String], environment: [String: String], clean: Bool) async throws -> Result {
            let started = ContinuousClock.now
            let result = try await CLI.runOffPool(arguments, environment: environment)
            if clean { self.clean = max(.milliseconds(20), min(self.clean, ContinuousClock.now - started)) }
            return result
        }

        /// Starts a flush and kills it with SIGKILL within a clean flush's time.
        mutating func kill(_ arguments: [String], environment: [String: String]) async throws {
            let milliseconds = cleanMilliseconds
            let delay = Duration.milliseconds(Int.random(in: milliseconds / 10...milliseconds * 9 / 10, using: &generator))
            kills += 1
            if try await CLI.offPool({ try CLI.runKilled(arguments, environment: environment, after: delay) }) == nil {
                midway += 1
            }
        }

        var cleanMilliseconds: Int { Int(clean / .milliseconds(1)) }
        /// Whether most kills landed during a flush, as the trials mean them to.
        var landedMostly: Bool { midway >= kills / 2 }
    }

    /// Runs blocking work on a GCD thread: the simulator in this process answers the child on
    /// the Swift concurrency pool, which a blocked test thread would starve.
    static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Swift.Result { try work() }) }
        }
    }

    static func runOffPool(_ arguments: [String], environment: [String: String] = [:], input: Data? = nil) async throws
        -> Result
    {
        try await offPool { try run(arguments, environment: environment, input: input) }
    }

    /// Starts the binary and kills it with SIGKILL after `delay`; returns its exit status if it
    /// finished before that, nil if it was killed.
    static func runKilled(_ arguments: [String], environment: [String: String], after delay: Duration) throws -> Int32? {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        // A child killed while it writes its coverage profile leaves a corrupt file that would
        // fail the coverage merge of the whole run: killed children write theirs elsewhere.
        env["LLVM_PROFILE_FILE"] =
            FileManager.default.temporaryDirectory
            .appendingPathComponent("intercom-sync-killed-%p.profraw").path
        process.environment = env
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = ContinuousClock.now + delay
        while process.isRunning && ContinuousClock.now < deadline {
            usleep(2_000)
        }
        guard process.isRunning else { return process.terminationStatus }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        return nil
    }
}
