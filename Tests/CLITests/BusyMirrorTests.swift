import Foundation
import IntercomSimulator
import Testing

@testable import IntercomSync

/// One sync, import or flush at a time holds a mirror: another is refused with exit 5, or waits
/// its turn with `--wait`.
@Suite(.serialized) struct BusyMirrorTests {
    @Test func aBusyMirrorExitsFiveOrIsWaitedFor() async throws {
        let simulator = try await SyncCommandTests.simulator(contacts: 20)
        defer { Task { await simulator.stop() } }
        let workspace = try Workspace(contacts: 0)
        let token = ["INTERCOM_ACCESS_TOKEN": simulator.accessToken]
        let arguments = SyncCommandTests.arguments(["sync"], db: workspace.db, simulator: simulator)
        #expect(try await CLI.runOffPool(arguments, environment: token).status == 0)
        let mirror = try ContactMirror.open(at: workspace.db, mode: .existing)
        var lock: MirrorLock? = try MirrorLock.acquire(mirror, purpose: "a test holding the mirror")
        let refusedAt = ContinuousClock.now
        let busy = try await CLI.runOffPool(arguments, environment: token)
        // A child that did not wait would be refused in about this long: the lock is held for
        // several times it, so that only a child that waits can succeed.
        let hold = max(.milliseconds(500), (ContinuousClock.now - refusedAt) * 4)
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
        try await Task.sleep(for: hold)
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
        try await Task.sleep(for: hold)
        withExtendedLifetime(lock) {}
        lock = nil
        let flushed = try await flushing.value
        #expect(flushed.status == 0, "\(flushed.stderr)")
    }

    /// A first sync or a large import defers its indexes to its end, so a check meanwhile
    /// would find the full-text index behind the contacts and call a sound mirror damaged.
    @Test func doctorWaitsForTheWriterInsteadOfCallingItsWorkDamage() async throws {
        let workspace = try Workspace(contacts: 50)
        let mirror = try ContactMirror.open(at: workspace.db, mode: .existing)
        var lock: MirrorLock? = try MirrorLock.acquire(mirror, purpose: "intercom-sync sync")
        for flags in [[], ["--repair"]] {
            let checked = try CLI.run(["doctor", "--db", workspace.db] + flags)
            #expect(checked.status == 5, "\(flags): \(checked.stdout) \(checked.stderr)")
            #expect(checked.stderr.contains("intercom-sync sync (pid"), "\(checked.stderr)")
            #expect(!checked.stderr.contains("move the file aside") && !checked.stdout.contains("damaged"))
            #expect(!checked.stderr.contains("--wait"), "doctor has no --wait: \(checked.stderr)")
        }
        withExtendedLifetime(lock) {}
        lock = nil
        let sound = try CLI.run(["doctor", "--db", workspace.db])
        #expect(sound.status == 0, "\(sound.stdout) \(sound.stderr)")
    }

    /// A first sync or import creates the mirror under its lock: a doctor then must not open the
    /// file (running the migrations itself, or calling the empty file no mirror).
    @Test func doctorLeavesAMirrorBeingCreatedAlone() throws {
        let workspace = try Workspace(contacts: 0)
        #expect(FileManager.default.createFile(atPath: workspace.db, contents: Data()))
        let lock = open(workspace.db + ".lock", O_RDWR | O_CREAT, 0o600)
        #expect(lock >= 0 && flock(lock, LOCK_EX) == 0)
        defer { close(lock) }
        let note = "intercom-sync sync (pid 1, started 2026-12-07T00:00:00Z)\n"
        _ = note.withCString { write(lock, $0, strlen($0)) }
        for flags in [[], ["--repair"]] {
            let checked = try CLI.run(["doctor", "--db", workspace.db] + flags)
            #expect(checked.status == 5, "\(flags): \(checked.stdout) \(checked.stderr)")
            #expect(checked.stderr.contains("intercom-sync sync (pid 1"), "\(checked.stderr)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: workspace.db)).isEmpty, "doctor wrote nothing")
    }
}
