import Foundation
import IntercomSimulator
import IntercomSync
import Logging
import Synchronization
import Testing

/// What an app sets in `IntercomMirror.Configuration` to talk to Intercom as the command-line
/// tool does (a log, a share of the rate limit, patience with 429s), and a mirror opened offline
/// that connects later. A plain import: the tests see the library as an app does.
@Suite struct MirrorConfigurationTests {
    static func simulator(contacts: Int) async throws -> IntercomSimulator {
        var configuration = SimulatorConfiguration()
        configuration.seedContacts = contacts
        configuration.seed = 5
        configuration.rateLimit = 1_000
        return try await IntercomSimulator.start(configuration)
    }

    static func connection(to simulator: IntercomSimulator) -> IntercomConnection {
        IntercomConnection(baseURL: URL(string: simulator.baseURL)!, accessToken: simulator.accessToken, timeout: 10)
    }

    @Test func aMirrorOpenedOfflineSyncsOnceItConnects() async throws {
        let simulator = try await Self.simulator(contacts: 40)
        defer { Task { await simulator.stop() } }
        let folder = try TemporaryDirectory()
        let offline = try await IntercomMirror.open(at: folder.path("mirror.sqlite"))
        await #expect(throws: SyncError.self) { try await offline.sync() }

        let online = try offline.connecting(to: Self.connection(to: simulator))
        #expect(try await online.sync().written == 40)
        // One mirror behind both: the offline value reads what the connected one stored.
        #expect(try await offline.status().contacts.synced == 40)
        #expect(offline.path == online.path)
    }

    @Test func connectingRefusesATokenInClearToAnotherMachine() async throws {
        let mirror = try IntercomMirror.inMemory()
        let remote = IntercomConnection(baseURL: URL(string: "http://192.0.2.1:8080")!, accessToken: "secret")
        #expect(throws: IntercomError.self) { try mirror.connecting(to: remote) }
    }

    @Test func theLoggerHearsEachExchangeButNeverTheToken() async throws {
        let simulator = try await Self.simulator(contacts: 10)
        defer { Task { await simulator.stop() } }
        let lines = LogLines()
        var logger = Logger(label: "test") { _ in lines }
        logger.logLevel = .debug
        let mirror = try IntercomMirror.inMemory(
            connection: Self.connection(to: simulator),
            configuration: IntercomMirror.Configuration(syncConcurrency: 2, logger: logger))
        try await mirror.sync(.full)
        let logged = lines.all
        #expect(logged.contains { $0.contains("GET \(simulator.baseURL)/me → 200") }, "\(logged.prefix(5))")
        #expect(logged.contains { $0.contains("/contacts") })
        #expect(logged.contains { $0.contains("Authorization: Bearer <") }, "the headers at debug, the token as its fingerprint")
        #expect(!logged.contains { $0.contains(simulator.accessToken) })
    }

    /// A rate share holds the mirror's requests to that share of each window, without a 429;
    /// the whole limit is used without one.
    @Test func aRateShareLeavesTheRestOfEachWindow() async throws {
        var configuration = SimulatorConfiguration()
        configuration.seedContacts = 3_000
        configuration.rateLimit = 20
        configuration.rateLimitWindowSeconds = 1
        var busiest: [Double: Int] = [:]
        for share in [0.5, 1] {
            let simulator = try await IntercomSimulator.start(configuration)
            defer { Task { await simulator.stop() } }
            let mirror = try IntercomMirror.inMemory(
                connection: Self.connection(to: simulator),
                configuration: IntercomMirror.Configuration(syncConcurrency: 1, rateShare: share))
            try await mirror.sync(.full)
            let requests = await simulator.workspace.requestLog()
            #expect(!requests.contains { $0.status == 429 }, "share \(share)")
            busiest[share] = Dictionary(grouping: requests, by: \.time).values.map(\.count).max() ?? 0
        }
        #expect(busiest[0.5]! <= 10, "half of a window of 20: \(busiest)")
        #expect(busiest[1]! > 10, "the whole window: \(busiest)")
    }

    /// Intercom answering 429 without end: requests wait through it for the configured
    /// patience, telling the app as they wait, then the sync fails, and resumes later.
    @Test func rateLimitPatienceBoundsTheWaitAndTellsOfIt() async throws {
        var configuration = SimulatorConfiguration()
        configuration.seedContacts = 300
        configuration.rateLimitWindowSeconds = 1  // each 429 is waited through in a second
        let simulator = try await IntercomSimulator.start(configuration)
        defer { Task { await simulator.stop() } }
        var faults = FaultPlan()
        faults.rateLimitBurstRate = 1
        faults.rateLimitBurstLength = 1_000_000
        faults.routes = ["GET /contacts", "POST /contacts/search"]
        await simulator.workspace.setFaults(faults)
        let waits = Mutex<[Duration]>([])
        let mirror = try IntercomMirror.inMemory(
            connection: Self.connection(to: simulator),
            configuration: IntercomMirror.Configuration(
                syncConcurrency: 1, rateLimitPatience: .seconds(2),
                onRateLimitWait: { waited in waits.withLock { $0.append(waited) } }))
        let started = ContinuousClock.now
        let error = await #expect(throws: IntercomError.self) { try await mirror.sync(.full) }
        #expect(
            error?.status == 429 && error?.message.contains("still rate-limited after") == true, "\(String(describing: error))")
        #expect(ContinuousClock.now - started >= .seconds(2), "it waited for its patience")
        let heard = waits.withLock { $0 }
        #expect(!heard.isEmpty && heard == heard.sorted() && heard.last! < .seconds(2), "\(heard)")

        await simulator.workspace.setFaults(FaultPlan())
        try await mirror.sync()
        #expect(try await mirror.status().contacts.synced == 300)
    }

    /// The progress a sync reports carries the requests sent so far and Intercom's rate limit,
    /// what a progress bar needs to show the pace against the budget.
    @Test func progressCountsRequestsAndKnowsTheRateLimit() async throws {
        let simulator = try await Self.simulator(contacts: 400)
        defer { Task { await simulator.stop() } }
        let steps = Mutex<[SyncProgress]>([])
        let mirror = try IntercomMirror.inMemory(
            connection: Self.connection(to: simulator),
            configuration: IntercomMirror.Configuration(syncConcurrency: 1, rateShare: 0.5))
        try await mirror.sync(.full) { step in steps.withLock { $0.append(step) } }
        let seen = steps.withLock { $0 }
        #expect(seen.count >= 3)
        #expect(seen.allSatisfy { $0.rateLimit == 1_000 }, "\(seen.map(\.rateLimit))")
        #expect(seen.map(\.requests) == seen.map(\.requests).sorted() && seen.last!.requests >= 3)
    }
}

/// A log handler that keeps every message, with its metadata, as one line.
final class LogLines: LogHandler, @unchecked Sendable {
    private let lines = Mutex<[String]>([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    var all: [String] { lines.withLock { $0 } }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        lines.withLock { $0.append("\(event.level) \(event.message)") }
    }
}
