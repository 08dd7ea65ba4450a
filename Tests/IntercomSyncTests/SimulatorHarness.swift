import Foundation
import GRDB
import IntercomSimulator
import Testing

@testable import IntercomSync

/// A simulator on loopback, a mirror, and a sync between them: the engine as a user runs it,
/// over real HTTP.
final class SimulatorHarness: @unchecked Sendable {
    let simulator: IntercomSimulator
    let mirror: ContactMirror
    let client: IntercomClient
    let sync: ContactSync
    let folder: TemporaryDirectory

    var workspace: SimulatedWorkspace { simulator.workspace }

    /// `startTime` nil runs the simulator on the wall clock (rate-limit windows then pass in
    /// real time); a fixed time lets a test move the clock.
    static func start(
        contacts: Int, startTime: Int? = 1_767_225_600, timeout: TimeInterval = 5,
        configure: (inout SimulatorConfiguration) -> Void = { _ in }
    ) async throws -> SimulatorHarness {
        var configuration = SimulatorConfiguration()
        configuration.seedContacts = contacts
        configuration.seed = 7
        configuration.startTime = startTime
        // A fixed clock never starts a new window: let a test's requests through unless it asks.
        configuration.rateLimit = startTime == nil ? 1_667 : 1_000_000
        configure(&configuration)
        let simulator = try await IntercomSimulator.start(configuration)
        return try SimulatorHarness(simulator: simulator, timeout: timeout)
    }

    private init(simulator: IntercomSimulator, timeout: TimeInterval) throws {
        self.simulator = simulator
        folder = try TemporaryDirectory()
        mirror = try ContactMirror.open(at: folder.path("mirror.sqlite"), mode: .createIfMissing)
        let connection = IntercomConnection(
            baseURL: URL(string: simulator.baseURL)!, accessToken: simulator.accessToken, timeout: timeout)
        client = IntercomClient(
            connection: connection,
            retryPolicy: RetryPolicy(maximumAttempts: 8, maximumTimeouts: 4, baseDelay: 0.05, maximumDelay: 0.5))
        let clock = simulator.workspace.clock
        sync = ContactSync(mirror: mirror, client: client, now: { clock.now })
    }

    func stop() async {
        await simulator.stop()
    }

    /// The contacts Intercom lists (archived ones are hidden), by id, as JSON values.
    func listedContacts() async throws -> [String: JSONValue] {
        let archived = await workspace.archivedIDs()
        var contacts: [String: JSONValue] = [:]
        for body in await workspace.exportContacts() {
            let value = try JSONValue(jsonText: body)
            guard let id = value["id"]?.string, !archived.contains(id) else { continue }
            contacts[id] = value
        }
        return contacts
    }

    /// Ids of live contacts with this role (`user` or `lead`), in creation order.
    func contactIDs(role: String) async throws -> [String] {
        try await workspace.exportContacts().compactMap { body in
            let value = try JSONValue(jsonText: body)
            return value["role"]?.string == role ? value["id"]?.string : nil
        }
    }

    /// The mirror's synced contacts, by id, as JSON values.
    func mirroredContacts() throws -> [String: JSONValue] {
        try mirror.writer.read { db in
            var contacts: [String: JSONValue] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, contact_body(body) AS body FROM contacts WHERE state = 'synced'") {
                contacts[row[0]] = try JSONValue(jsonText: row[1])
            }
            return contacts
        }
    }

    /// Ids the mirror holds as tombstones.
    func tombstonedIDs() throws -> Set<String> {
        try mirror.writer.read { db in
            Set(try String.fetchAll(db, sql: "SELECT id FROM contacts WHERE state = 'tombstoned'"))
        }
    }

    /// Checks the mirror holds exactly what Intercom lists; returns the differences, if any.
    func differences() async throws -> [String] {
        let expected = try await listedContacts()
        let actual = try mirroredContacts()
        var problems: [String] = []
        for (id, body) in expected where actual[id] != body {
            problems.append(actual[id] == nil ? "missing \(id)" : "different \(id)")
        }
        for id in actual.keys where expected[id] == nil {
            problems.append("extra \(id)")
        }
        return problems
    }
}

extension SimulatorHarness {
    /// A flush on the simulator's clock.
    func flush(concurrency: Int = 4, client: IntercomClient? = nil, pageSize: Int = 2_000) async throws -> FlushSummary {
        let clock = simulator.workspace.clock
        return try await OutboxFlush(
            mirror: mirror, client: client ?? self.client, concurrency: concurrency, pageSize: pageSize
        ) {
            clock.now
        }.run()
    }

    var now: Int { simulator.workspace.clock.now }

    /// How many contacts Intercom holds per email (lower-cased), archived ones included.
    func emailCounts() async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for body in await workspace.exportContacts() {
            if let email = try JSONValue(jsonText: body)["email"]?.string { counts[email.lowercased(), default: 0] += 1 }
        }
        return counts
    }

    /// The messages Intercom received, oldest first.
    func sentMessages() async throws -> [JSONValue] {
        try await workspace.sentMessages().map { try JSONValue(jsonText: $0) }
    }

    /// The outbox entry `seq` as it stands.
    func entry(_ seq: Int64) throws -> OutboxEntry {
        try #require(try mirror.outboxEntry(seq: seq))
    }
}
