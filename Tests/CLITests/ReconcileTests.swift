import Foundation
import GRDB
import IntercomSimulator
import IntercomSync
import SyntheticData
import Testing

/// The reconcile guarantee, tried as a user meets it: syncs killed at random over simulated days
/// while the workspace changes, then one clean `sync --reconcile`, which must leave the mirror
/// equal to the workspace as it stood when the command started.
@Suite(.serialized) struct ReconcileTests {
    /// The workspace's live contacts (not archived, deleted or merged): id → email, name, updated_at.
    static func live(_ workspace: SimulatedWorkspace) async throws -> [String: String] {
        let archived = await workspace.archivedIDs()
        var rows: [String: String] = [:]
        for text in await workspace.exportContacts() {
            guard case .object(let fields) = try JSONValue(jsonText: text), let id = fields["id"]?.string,
                !archived.contains(id)
            else { continue }
            rows[id] = Self.row(fields["email"]?.string, fields["name"]?.string, fields["updated_at"]?.int.map(Int64.init))
        }
        return rows
    }

    static func row(_ email: String?, _ name: String?, _ updatedAt: Int64?) -> String {
        "\(email ?? "-")|\(name ?? "-")|\(updatedAt.map(String.init) ?? "-")"
    }

    /// The mirror's synced contacts, in the same shape.
    static func mirrored(_ path: String) throws -> [String: String] {
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        return try queue.read { db in
            var rows: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, email, name, updated_at FROM contacts WHERE state = 'synced'") {
                rows[row[0]] = Self.row(row[1], row[2], row[3])
            }
            return rows
        }
    }

    /// Edits, deletes, archives, merges and creates a few contacts, then moves the clock on
    /// by an hour to three days.
    static func change(
        _ simulator: IntercomSimulator, round: Int, using generator: inout SplitMix64
    ) async throws {
        let workspace = simulator.workspace
        let archived = await workspace.archivedIDs()
        var ids = await workspace.contactIDs().filter { !archived.contains($0) }
        ids.shuffle(using: &generator)
        var next = ids.makeIterator()
        for index in 0..<12 {
            let fields = JSONValue.object(["name": .string("Edited \(round).\(index)")]).jsonText
            try await workspace.edit(id: next.next()!, fieldsJSON: fields)
        }
        for _ in 0..<3 { try await workspace.delete(id: next.next()!) }
        for _ in 0..<2 { try await workspace.archive(id: next.next()!) }
        let roles = try await Dictionary(
            uniqueKeysWithValues: workspace.exportContacts().compactMap { text -> (String, String)? in
                guard case .object(let fields) = try JSONValue(jsonText: text), let id = fields["id"]?.string,
                    let role = fields["role"]?.string
                else { return nil }
                return (id, role)
            })
        let rest = Array(next)
        if let lead = rest.first(where: { roles[$0] == "lead" }), let user = rest.first(where: { roles[$0] == "user" }) {
            try await workspace.merge(from: lead, into: user)
        }
        for index in 0..<6 {
            let fields = JSONValue.object([
                "role": "user", "email": .string("new.\(round).\(index)@example.com"),
                "name": .string("New \(round).\(index)"),
            ]).jsonText
            _ = try await workspace.create(fieldsJSON: fields)
        }
        simulator.workspace.clock.advance(by: Int.random(in: 3_600...(3 * 86_400), using: &generator))
    }

    /// `--reconcile` must leave no difference at all; a plain `sync` must hold every contact and
    /// every edit made before it started (deletions wait for a reconcile).
    @Test(arguments: ["--reconcile", "plain"])
    func aCleanSyncAfterKilledSyncsOverDaysHoldsTheWorkspace(_ final: String) async throws {
        let simulator = try await SyncCommandTests.simulator(contacts: 3_000, latency: 8)
        defer { Task { await simulator.stop() } }
        let token = ["INTERCOM_ACCESS_TOKEN": simulator.accessToken]
        let reference = try Workspace(contacts: 0)
        let started = Date()
        let clean = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync", "--concurrency", "8"], db: reference.db, simulator: simulator),
            environment: token)
        #expect(clean.status == 0, "\(clean.stderr)")
        var schedule = CLI.KillSchedule(
            cleanRun: .milliseconds(Int(Date().timeIntervalSince(started) * 1000)), from: 0.2, to: 0.9)

        for trial in 0..<2 {
            var generator = SplitMix64(seed: UInt64(trial + 1))
            let workspace = try Workspace(contacts: 0)
            // Plain syncs, full ones and reconciles, each killed part-way (or finishing first).
            let commands = [["sync"], ["sync", "--full"], ["sync", "--reconcile"]]
            for round in 0..<6 {
                let arguments = SyncCommandTests.arguments(
                    commands[(round + trial) % 3] + ["--concurrency", "8"], db: workspace.db, simulator: simulator)
                let began = ContinuousClock.now
                let status = try await CLI.offPool { [schedule, generator] in
                    var generator = generator
                    return try CLI.runKilled(arguments, environment: token, after: schedule.delay(using: &generator))
                }
                _ = generator.next()
                if status != nil { schedule.finished(in: ContinuousClock.now - began) }
                try await Self.change(simulator, round: 10 * trial + round, using: &generator)
            }
            // Last, a full walk killed half-way, and more changes: the reconcile finds it to resume.
            let full = SyncCommandTests.arguments(
                ["sync", "--full", "--concurrency", "8"], db: workspace.db, simulator: simulator)
            for _ in 0..<8 {
                let delay = Duration.milliseconds(
                    Int(Double(schedule.cleanRunMilliseconds) * Double.random(in: 0.3...0.6, using: &generator)))
                let killed = try await CLI.offPool { try CLI.runKilled(full, environment: token, after: delay) }
                if killed == nil { break }
            }
            try await Self.change(simulator, round: 10 * trial + 9, using: &generator)
            let expected = try await Self.live(simulator.workspace)
            let reconcile = try await CLI.runOffPool(
                SyncCommandTests.arguments(
                    ["sync", "--concurrency", "8"] + (final == "plain" ? [] : [final]), db: workspace.db,
                    simulator: simulator),
                environment: token)
            #expect(reconcile.status == 0, "trial \(trial): \(reconcile.stderr)")
            let mirrored = try Self.mirrored(workspace.db)
            let missing = expected.keys.filter { mirrored[$0] == nil }
            let extra = mirrored.keys.filter { expected[$0] == nil }
            let differing = expected.keys.filter { mirrored[$0] != nil && mirrored[$0] != expected[$0] }
            #expect(
                missing.isEmpty && (extra.isEmpty || final == "plain") && differing.isEmpty,
                "trial \(trial): \(missing.count) missing, \(extra.count) still live that are gone, \(differing.count) stale; e.g. \(differing.prefix(2).map { "\(expected[$0]!) vs \(mirrored[$0]!)" })"
            )
        }
    }
}
