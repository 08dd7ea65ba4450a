import Foundation
import IntercomSimulator
import IntercomSyncTeam
import Synchronization
import Testing

@testable import IntercomSync

/// A PostgreSQL restarted under the team's puller and its flush workers costs a retry: the
/// real binary against the test cluster, restarted as a crash would (`scripts/postgres restart`)
/// at a moment scaled to a measured clean run.
@Suite(
    .enabled(
        if: ProcessInfo.processInfo.environment["INTERCOM_SYNC_TEST_PGDATA"] != nil,
        "INTERCOM_SYNC_TEST_PGDATA is not set: scripts/test starts a PostgreSQL cluster for these tests"),
    .serialized)
struct TeamRestartTests {
    /// Restarts the cluster at once. Spawned and reaped by hand, off the cooperative pool:
    /// PostgreSQL, which the script starts again, keeps what it inherits open, and `Process`
    /// waits for that too. The shell closes every descriptor but the standard ones first: a
    /// server holding a copy of the simulator's sockets or of a child's output pipe would keep
    /// open what this process closed, and whoever reads the other end would wait for good.
    static func restartCluster() async throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/postgres").path
        let status = try await CLI.offPool { () -> Int32 in
            var pid: pid_t = 0
            let closing = #"for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done; "#
            let arguments = ["/bin/bash", "-c", closing + #"exec /bin/bash "$0" restart"#, script]
            var argv = arguments.map { strdup($0) } + [nil]
            defer { argv.forEach { free($0) } }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            for descriptor: Int32 in [1, 2] {
                posix_spawn_file_actions_addopen(&actions, descriptor, "/dev/null", O_WRONLY, 0)
            }
            guard posix_spawn(&pid, "/bin/bash", &actions, nil, &argv, environ) == 0 else { return -1 }
            var waited: Int32 = 0
            while waitpid(pid, &waited, 0) == -1 && errno == EINTR {}
            return (waited >> 8) & 0xFF
        }
        #expect(status == 0, "scripts/postgres restart exited \(status)")
    }

    /// Runs the binary as `CLI.run` does, but for `patience` at most: one still running then
    /// has its threads' backtraces taken (lldb, which the Swift toolchain carries) into its
    /// result's standard error, and is killed with status -1. A hang fails its test, saying
    /// where, instead of holding the whole run.
    static func runWatched(_ arguments: [String], environment: [String: String], patience: Duration) async throws
        -> CLI.Result
    {
        try await CLI.offPool {
            let process = Process()
            process.executableURL = CLI.binary
            process.arguments = arguments
            process.environment = CLI.childEnvironment(environment)
            let out = Pipe()
            let err = Pipe()
            process.standardOutput = out
            process.standardError = err
            process.standardInput = FileHandle.nullDevice
            try process.run()
            let output = Mutex<(Data, Data)>((Data(), Data()))
            let readers = DispatchGroup()
            for (handle, isError) in [(out.fileHandleForReading, false), (err.fileHandleForReading, true)] {
                readers.enter()
                Thread {
                    let data = handle.readDataToEndOfFile()
                    output.withLock { if isError { $0.1 = data } else { $0.0 = data } }
                    readers.leave()
                }.start()
            }
            let deadline = ContinuousClock.now + patience
            while process.isRunning && ContinuousClock.now < deadline { usleep(10_000) }
            var backtrace = ""
            if process.isRunning {
                backtrace = Self.backtraces(of: process.processIdentifier)
                kill(process.processIdentifier, SIGKILL)
            }
            process.waitUntilExit()
            readers.wait()
            let (stdout, stderr) = output.withLock { $0 }
            let hung = backtrace.isEmpty ? "" : "\nstill running after \(patience), killed; its threads:\n\(backtrace)"
            return CLI.Result(
                status: backtrace.isEmpty ? process.terminationStatus : -1, stdout: String(decoding: stdout, as: UTF8.self),
                stderr: String(decoding: stderr, as: UTF8.self) + hung)
        }
    }

    /// Every thread's backtrace of a running process (gdb's, or lldb's), or why there is none.
    static func backtraces(of pid: pid_t) -> String {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        let debuggers: [(String, [String])] = [
            ("gdb", ["-p", "\(pid)", "-batch", "-ex", "thread apply all bt"]),
            ("lldb", ["-p", "\(pid)", "--batch", "-o", "thread backtrace all", "-o", "detach"]),
        ]
        // A debugger that hangs itself is given up after a minute.
        .map { name, arguments in (name, ["-s", "KILL", "60", name] + arguments) }
        var tried: [String] = []
        for (name, arguments) in debuggers {
            guard path.contains(where: { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }),
                let found = path.map({ "\($0)/timeout" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) })
            else { continue }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: found)
            process.arguments = arguments
            let out = Pipe()
            process.standardOutput = out
            process.standardError = out
            process.standardInput = FileHandle.nullDevice
            guard (try? process.run()) != nil else { continue }
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            if process.terminationStatus == 0 && text.contains("#1") || text.contains("frame #1") { return text }
            tried.append("\(name): \(text.suffix(300))")
        }
        return tried.isEmpty ? "(no debugger to take them)" : tried.joined(separator: "\n")
    }

    /// Runs `run` while the cluster restarts `after` into it; answers what `run` answered.
    static func restarting<T: Sendable>(after delay: Duration, _ run: @escaping @Sendable () async throws -> T)
        async throws -> T
    {
        async let result = run()
        try await Task.sleep(for: delay)
        try await restartCluster()
        return try await result
    }

    @Test func aRestartMidPullAndMidFlushCostsARetry() async throws {
        let simulator = try await TeamPullerTests.simulator(contacts: 400)
        defer { Task { await simulator.stop() } }
        var faults = FaultPlan()
        faults.latencyMilliseconds = 5
        await simulator.workspace.setFaults(faults)
        let token = ["INTERCOM_ACCESS_TOKEN": simulator.accessToken]
        // However slow the machine, a run that outlasts ten clean ones and the store's minute of
        // patience for a reconnection is stuck.
        let patience = Mutex(Duration.seconds(3_600))
        @Sendable func pull(into url: TeamStoreURL, db: String) async throws -> CLI.Result {
            var bare = url
            bare.password = nil
            return try await Self.runWatched(
                SyncCommandTests.arguments(["sync", "--store", bare.description], db: db, simulator: simulator),
                environment: token.merging(["PGPASSWORD": url.password ?? ""]) { $1 }, patience: patience.withLock { $0 })
        }
        // A clean pull and publish, timed; then one with the cluster restarted midway.
        let clean = try await TeamWorkerTests.freshStore("restartclean")
        let started = ContinuousClock.now
        let cleanPuller = try Workspace(contacts: 0)
        let first = try await pull(into: clean, db: cleanPuller.db)
        #expect(first.status == 0, "\(first.stderr)")
        let cleanRun = ContinuousClock.now - started
        patience.withLock { $0 = cleanRun * 10 + .seconds(60) }
        let url = try await TeamWorkerTests.freshStore("restartpull")
        let puller = try Workspace(contacts: 0)
        let pullerDB = puller.db
        let pulled = try await Self.restarting(after: cleanRun * 0.6) { try await pull(into: url, db: pullerDB) }
        #expect(pulled.status == 0, "\(pulled.stderr)")
        let store = try await TeamStore.open(url)
        defer { Task { await store.close() } }
        let replica = try await store.contactChanges(since: 0, limit: 10_000)
        #expect(replica.count == 400, "every contact published despite the restart")

        // Three workers draining a batch: timed clean on the first store, then on the second
        // with the cluster restarted midway.
        let contacts = try await TeamWorkerTests.contacts(simulator)
        let ids = contacts.keys.sorted()
        @Sendable func drain(_ batch: TeamWorkerTests.Batch, into url: TeamStoreURL, store: TeamStore) async throws
            -> [CLI.Result]
        {
            _ = try await store.push(batch.entries, from: "agent-r", now: 1_767_225_600)
            let workers = ["r1", "r2", "r3"].map { TeamWorkerTests.worker($0, store: url, simulator: simulator) }
            let watch = patience.withLock { $0 }
            return try await withThrowingTaskGroup(of: CLI.Result.self) { group in
                for worker in workers {
                    group.addTask {
                        try await Self.runWatched(worker.arguments, environment: worker.environment, patience: watch)
                    }
                }
                return try await group.reduce(into: [CLI.Result]()) { $0.append($1) }
            }
        }
        func existing(_ range: Range<Int>) -> [(id: String, name: String?)] {
            ids[range].map { (id: $0, name: contacts[$0]?["name"]?.string) }
        }
        let cleanStore = try await TeamStore.open(clean)
        defer { Task { await cleanStore.close() } }
        let drainStarted = ContinuousClock.now
        _ = try await drain(
            TeamWorkerTests.batch("clean", startingAt: 1, creates: 10, existing: existing(6..<12)), into: clean,
            store: cleanStore)
        let cleanDrain = ContinuousClock.now - drainStarted
        patience.withLock { $0 = max($0, cleanDrain * 10 + .seconds(60)) }
        let batch = TeamWorkerTests.batch("restart", startingAt: 1, creates: 10, existing: existing(0..<6))
        let runs = try await Self.restarting(after: cleanDrain * 0.5) { try await drain(batch, into: url, store: store) }
        for run in runs { #expect(run.status == 0 || run.status == 3, "\(run.stderr)") }
        let finish = TeamWorkerTests.worker("r4", store: url, simulator: simulator)
        let last = try await Self.runWatched(
            finish.arguments, environment: finish.environment, patience: patience.withLock { $0 })
        #expect(last.status == 0, "\(last.stderr)")
        try await TeamWorkerTests.checkDrained(batch, origin: "agent-r", store: store, simulator: simulator, "restart")
    }
}
