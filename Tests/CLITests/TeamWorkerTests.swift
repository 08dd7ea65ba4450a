import Foundation
import IntercomSimulator
import IntercomSyncTeam
import Logging
import PostgresNIO
import Testing

@testable import IntercomSync

/// `outbox flush --store`: flush workers, as separate processes of the real binary, drain the
/// team's outbox in PostgreSQL (the cluster `scripts/test` starts, a database of its own for
/// each test) against the simulator, with the outbox's guarantees across workers.
@Suite(
    .enabled(
        if: ProcessInfo.processInfo.environment["INTERCOM_SYNC_TEST_STORE"] != nil,
        "INTERCOM_SYNC_TEST_STORE is not set: scripts/test starts a PostgreSQL cluster for these tests"),
    .serialized)
struct TeamWorkerTests {
    static let cluster = ProcessInfo.processInfo.environment["INTERCOM_SYNC_TEST_STORE"].flatMap { try? TeamStoreURL($0) }
    static let logger = Logger(label: "team-worker-tests", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A new, empty database on the test cluster, and its URL.
    static func freshStore(_ name: String = #function) async throws -> TeamStoreURL {
        var url = try #require(cluster)
        let database =
            "w_" + name.lowercased().filter { $0.isLetter || $0.isNumber }.prefix(30) + "_"
            + String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let connection = try await PostgresConnection.connect(
            configuration: PostgresConnection.Configuration(
                host: url.host, port: url.port, username: url.username, password: url.password, database: url.database,
                tls: .disable), id: 1, logger: logger)
        do {
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(database)"), logger: logger)
            try await connection.close()
        } catch {
            try? await connection.close()
            throw error
        }
        url.database = database
        return url
    }

    /// A worker's command line and environment: the Intercom token, and the store's password
    /// from PGPASSWORD, never on the command line.
    static func worker(
        _ name: String, store: TeamStoreURL, simulator: IntercomSimulator, extra: [String] = []
    ) -> (arguments: [String], environment: [String: String]) {
        var bare = store
        bare.password = nil
        return (
            ["outbox", "flush", "--store", bare.description, "--worker", name, "--base-url", simulator.baseURL] + extra,
            ["INTERCOM_ACCESS_TOKEN": simulator.accessToken, "PGPASSWORD": store.password ?? ""]
        )
    }

    /// What one agent staged, as it pushes it into the team outbox.
    struct Batch {
        var entries: [PushedEntry] = []
        var createdEmails: [String] = []
        var messageBodies: [String] = []
        /// Contact id → the note's body.
        var notes: [String: String] = [:]
        /// Contact id → the name it was edited to.
        var names: [String: String] = [:]
        var tagged: [String] = []
        var archived: [String] = []
        private var next: Int64

        init(startingAt seq: Int64) { next = seq }

        mutating func add(_ kind: OutboxEntry.Kind, _ contactID: String?, _ payload: JSONValue, after create: Int64? = nil)
            -> Int64
        {
            let seq = next
            next += 1
            entries.append(
                PushedEntry(
                    originSeq: seq, kind: kind, contactID: contactID, dependsOnOriginSeq: create, payload: payload.jsonText,
                    createdAt: 1_767_225_600))
            return seq
        }
    }

    /// A batch of every kind: `creates` new contacts each with a message, and for each of
    /// `existing` (id, name) a message, a note, an edit of its name, and alternately a tagging
    /// or an archive.
    static func batch(_ label: String, startingAt seq: Int64, creates: Int, existing: [(id: String, name: String?)]) -> Batch {
        var batch = Batch(startingAt: seq)
        for index in 0..<creates {
            let email = "\(label)-\(index)@example.com"
            let create = batch.add(
                .createContact, "local-\(label)-\(index)", .object(["email": .string(email), "name": .string("New \(index)")]))
            batch.createdEmails.append(email)
            let body = "\(label) welcome \(index)"
            _ = batch.add(
                .sendMessage, "local-\(label)-\(index)", MessageDraft(kind: .inApp, body: body, to: "x").payload, after: create)
            batch.messageBodies.append(body)
        }
        for (index, contact) in existing.enumerated() {
            let body = "\(label) hello \(index)"
            _ = batch.add(.sendMessage, contact.id, MessageDraft(kind: .inApp, body: body, to: "x").payload)
            batch.messageBodies.append(body)
            let note = "\(label) note \(index)"
            _ = batch.add(.addNote, contact.id, .object(["body": .string(note)]))
            batch.notes[contact.id] = note
            let name = "\(label) Edited \(index)"
            var edit: [String: JSONValue] = ["field": "name", "mine": .string(name)]
            if let base = contact.name { edit["base"] = .string(base) }
            _ = batch.add(.updateContact, contact.id, .object(["edits": .array([.object(edit)])]))
            batch.names[contact.id] = name
            if index % 2 == 0 {
                _ = batch.add(.tagContact, contact.id, .object(["name": .string("\(label)-tag")]))
                batch.tagged.append(contact.id)
            } else {
                _ = batch.add(.archiveContact, contact.id, .object([:]))
                batch.archived.append(contact.id)
            }
        }
        return batch
    }

    /// The simulator's contacts by id, with their names.
    static func contacts(_ simulator: IntercomSimulator) async throws -> [String: JSONValue] {
        var contacts: [String: JSONValue] = [:]
        for body in await simulator.workspace.exportContacts() {
            let contact = try JSONValue(jsonText: body)
            if let id = contact["id"]?.string { contacts[id] = contact }
        }
        return contacts
    }

    /// Checks Intercom and the team outbox after `batch` was drained: one contact per staged
    /// create, no message or note twice, none lost, every edit, tagging and archive done.
    static func checkDrained(
        _ batch: Batch, origin: String, store: TeamStore, simulator: IntercomSimulator, _ label: String
    ) async throws {
        let seqs = Set(batch.entries.map(\.originSeq))
        let entries = try await store.outboxEntries().filter { $0.origin == origin && seqs.contains($0.originSeq) }
        #expect(entries.count == batch.entries.count, "\(label): an entry was lost")
        let bySeq = Dictionary(uniqueKeysWithValues: entries.map { ($0.originSeq, $0) })
        let contacts = try await contacts(simulator)
        let emails = contacts.values.compactMap { $0["email"]?.string }
        let received = try await simulator.workspace.sentMessages().compactMap { try JSONValue(jsonText: $0)["body"]?.string }
        let archived = await simulator.workspace.archivedIDs()
        let relations = await simulator.workspace.relationsByContact()
        let replica = Dictionary(
            try await store.contactChanges(since: 0, limit: 100_000).map { ($0.id, $0) }, uniquingKeysWith: { $1 })
        for pushed in batch.entries {
            let entry = try #require(bySeq[pushed.originSeq], "\(label): #\(pushed.originSeq) lost")
            let state = entry.entry.state
            switch pushed.kind {
            case .createContact:
                let email = try #require(try JSONValue(jsonText: pushed.payload)["email"]?.string)
                #expect(emails.filter { $0 == email }.count == 1, "\(label): \(email) on Intercom once")
                #expect(state == .sent, "\(label): the create of \(email) is \(state)")
                let id = try #require(entry.entry.remoteID, "\(label): \(email) has its Intercom id")
                #expect(replica[id]?.body?.contains(email) == true, "\(label): \(email) is in the team's replica")
            case .sendMessage:
                let body = try #require(try JSONValue(jsonText: pushed.payload)["body"]?.string)
                let copies = received.filter { $0 == body }.count
                #expect(copies <= 1, "\(label): \"\(body)\" reached Intercom \(copies) times")
                #expect([.sent, .unknown].contains(state), "\(label): \"\(body)\" is \(state)")
                if state == .sent { #expect(copies == 1, "\(label): \"\(body)\" sent but not received") }
            case .addNote:
                let id = try #require(pushed.contactID)
                let count = contacts[id]?["notes"]?["total_count"]?.int ?? -1
                #expect([.sent, .unknown].contains(state), "\(label): \(id)'s note is \(state)")
                #expect(state == .sent ? count == 1 : count <= 1, "\(label): \(id) has \(count) notes, entry \(state)")
            case .updateContact:
                let id = try #require(pushed.contactID)
                #expect(state == .sent, "\(label): \(id)'s edit is \(state)")
                #expect(contacts[id]?["name"]?.string == batch.names[id], "\(label): \(id)'s name reached Intercom")
            case .tagContact:
                let id = try #require(pushed.contactID)
                #expect(state == .sent, "\(label): \(id)'s tagging is \(state)")
                #expect(relations[id]?.tags.isEmpty == false, "\(label): \(id) is tagged on Intercom")
            case .archiveContact:
                let id = try #require(pushed.contactID)
                #expect(state == .sent, "\(label): \(id)'s archive is \(state)")
                #expect(archived.contains(id), "\(label): \(id) is archived on Intercom")
            default:
                Issue.record("\(label): a batch holds no \(pushed.kind)")
            }
        }
    }

    /// Three workers at once, one flush each, drain an outbox of every kind: each entry is sent
    /// once by one of them, a message waits for its contact's create and goes to its Intercom
    /// id, an edit is merged, and what Intercom answered is in the team's replica.
    @Test func threeWorkersDrainTheTeamOutboxOnce() async throws {
        let url = try await Self.freshStore()
        let simulator = try await SyncCommandTests.simulator(contacts: 12, latency: 3)
        defer { Task { await simulator.stop() } }
        let contacts = try await Self.contacts(simulator)
        let existing = contacts.keys.sorted().map { (id: $0, name: contacts[$0]?["name"]?.string) }
        let batch = Self.batch("drain", startingAt: 1, creates: 8, existing: existing)
        let store = try await TeamStore.open(url)
        defer { Task { await store.close() } }
        let pushed = try await store.push(batch.entries, from: "agent-a", now: 1_767_225_600)
        #expect(pushed.count == batch.entries.count)

        let runs = try await withThrowingTaskGroup(of: CLI.Result.self) { group in
            for name in ["w1", "w2", "w3"] {
                let (arguments, environment) = Self.worker(name, store: url, simulator: simulator)
                group.addTask { try await CLI.runOffPool(arguments, environment: environment) }
            }
            return try await group.reduce(into: [CLI.Result]()) { $0.append($1) }
        }
        for run in runs { #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)") }
        // A message may have waited for a create another worker was still sending.
        let (arguments, environment) = Self.worker("w4", store: url, simulator: simulator)
        let last = try await CLI.runOffPool(arguments, environment: environment)
        #expect(last.status == 0, "\(last.stderr)")
        try await Self.checkDrained(batch, origin: "agent-a", store: store, simulator: simulator, "drain")
        // A worker pointed at another Intercom sends nothing of the team's.
        let late = PushedEntry(
            originSeq: 1_000, kind: .sendMessage, contactID: existing[0].id,
            payload: MessageDraft(kind: .inApp, body: "late", to: "x").payload.jsonText, createdAt: 1_767_225_600)
        _ = try await store.push([late], from: "agent-a", now: 1_767_225_600)
        let wrongWorkspace = try await SyncCommandTests.simulator(contacts: 0)
        defer { Task { await wrongWorkspace.stop() } }
        let foreign = Self.worker("w5", store: url, simulator: wrongWorkspace)
        let refused = try await CLI.runOffPool(foreign.arguments, environment: foreign.environment)
        #expect(refused.status == 1 && refused.stderr.contains("the team store"), "\(refused.stderr)")
        #expect(try await store.outboxEntries(states: [.pending]).map(\.originSeq) == [1_000])
        #expect(!refused.stderr.contains(url.password ?? "-"), "the store's password is never printed")
    }

    /// Kill -9 of three workers at random moments while they drain creates, messages, notes,
    /// edits, taggings and archives, with lost answers and 5xx on: exactly one contact per
    /// staged create, no message or note twice (one whose worker died with it in flight is
    /// `unknown`), nothing lost. The kills land within a clean drain's measured time; the
    /// killed workers' leases run out and a last worker finishes.
    @Test func killedWorkersLoseNothingAndSendNothingTwice() async throws {
        let trials = 6
        let cleanTrials = 2
        let perTrial = 4
        let url = try await Self.freshStore()
        let simulator = try await SyncCommandTests.simulator(contacts: perTrial * trials, latency: 10)
        defer { Task { await simulator.stop() } }
        let store = try await TeamStore.open(url)
        defer { Task { await store.close() } }
        let contacts = try await Self.contacts(simulator)
        let ids = contacts.keys.sorted()
        let lease = 2
        var clean = Duration.seconds(3_600)
        var generator = SystemRandomNumberGenerator()
        var kills = 0
        var midway = 0
        var next: Int64 = 1
        for trial in 0..<trials {
            let mine = ids[(trial * perTrial)..<((trial + 1) * perTrial)].map { (id: $0, name: contacts[$0]?["name"]?.string) }
            let batch = Self.batch("t\(trial)", startingAt: next, creates: 6, existing: mine)
            next += Int64(batch.entries.count)
            _ = try await store.push(batch.entries, from: "agent-k", now: 1_767_225_600)
            var faults = FaultPlan()
            faults.latencyMilliseconds = 10
            if trial >= cleanTrials {
                faults.serverErrorRate = 0.1
                faults.lostResponseRate = 0.2
                faults.lostResponseDelaySeconds = 2
                faults.seed = UInt64(trial)
            }
            await simulator.workspace.setFaults(faults)
            let workers = ["a", "b", "c"].map {
                Self.worker("\(trial)\($0)", store: url, simulator: simulator, extra: ["--timeout", "1", "--lease", "\(lease)"])
            }
            let started = ContinuousClock.now
            if trial < cleanTrials {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in workers {
                        group.addTask { _ = try await CLI.runOffPool(worker.arguments, environment: worker.environment) }
                    }
                    try await group.waitForAll()
                }
                clean = max(.milliseconds(50), min(clean, ContinuousClock.now - started))
            } else {
                let milliseconds = Int(clean / .milliseconds(1))
                let delays = workers.map { _ in
                    Duration.milliseconds(Int.random(in: milliseconds / 10...milliseconds, using: &generator))
                }
                let outcomes = try await withThrowingTaskGroup(of: Int32?.self) { group in
                    for (worker, delay) in zip(workers, delays) {
                        group.addTask {
                            try await CLI.offPool {
                                try CLI.runKilled(worker.arguments, environment: worker.environment, after: delay)
                            }
                        }
                    }
                    return try await group.reduce(into: [Int32?]()) { $0.append($1) }
                }
                kills += outcomes.count
                midway += outcomes.filter { $0 == nil }.count
                // The killed workers' leases run out, and what they held is the others' again,
                // for a worker that meets the same faults to the end.
                try await Task.sleep(for: .seconds(lease) + .milliseconds(500))
                let faulty = Self.worker("\(trial)-faulty", store: url, simulator: simulator, extra: ["--timeout", "1"])
                _ = try await CLI.runOffPool(faulty.arguments, environment: faulty.environment)
            }
            await simulator.workspace.setFaults(FaultPlan())
            for round in 0..<2 {
                let finish = Self.worker("\(trial)-finish\(round)", store: url, simulator: simulator)
                let result = try await CLI.runOffPool(finish.arguments, environment: finish.environment)
                #expect(result.status == 0 || result.status == 3, "trial \(trial): \(result.stderr)")
            }
            try await Self.checkDrained(batch, origin: "agent-k", store: store, simulator: simulator, "trial \(trial)")
        }
        #expect(midway >= kills / 2, "most kills should land during the drain (a clean one took \(clean))")
        let states = try await store.outboxEntries().map(\.entry.state)
        print(
            "team kill trials: \(kills) kills, \(midway) mid-drain; clean drain \(clean); entries \(states.count), unknown \(states.filter { $0 == .unknown }.count)"
        )
    }
}
