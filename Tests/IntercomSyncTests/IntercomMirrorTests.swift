import Foundation
import IntercomSimulator
import Synchronization
import Testing

@testable import IntercomSync

/// The facade an app embeds, used as an app would: through its public methods only, against the
/// simulator over loopback.
@Suite struct IntercomMirrorTests {
    /// A simulator of `contacts` contacts and a file mirror connected to it.
    static func start(contacts: Int, tags: Int = 0, clock: WallClock = .system) async throws -> Fixture {
        var configuration = SimulatorConfiguration()
        configuration.seedContacts = contacts
        configuration.seedTags = tags
        configuration.seed = 11
        configuration.rateLimit = 1_000_000
        let simulator = try await IntercomSimulator.start(configuration)
        let folder = try TemporaryDirectory()
        let connection = IntercomConnection(
            baseURL: URL(string: simulator.baseURL)!, accessToken: simulator.accessToken, timeout: 10)
        let mirror = try await IntercomMirror.open(
            at: folder.path("mirror.sqlite"), connection: connection,
            configuration: IntercomMirror.Configuration(syncConcurrency: 4, clock: clock))
        return Fixture(simulator: simulator, mirror: mirror, folder: folder)
    }

    /// A simulator, a mirror connected to it, and the folder of the mirror's file (removed
    /// when the fixture goes).
    final class Fixture: @unchecked Sendable {
        let simulator: IntercomSimulator
        let mirror: IntercomMirror
        let folder: TemporaryDirectory

        init(simulator: IntercomSimulator, mirror: IntercomMirror, folder: TemporaryDirectory) {
            self.simulator = simulator
            self.mirror = mirror
            self.folder = folder
        }

        /// Stops the simulator; the folder goes with the fixture.
        func stop() {
            Task { await self.simulator.stop() }
        }
    }

    /// Sync, read, stage, flush, import and flush again: the whole loop through the facade.
    @Test func theWholeLoop() async throws {
        let fixture = try await Self.start(contacts: 300)
        let (simulator, mirror, folder) = (fixture.simulator, fixture.mirror, fixture.folder)
        defer { fixture.stop() }

        let synced = try await mirror.sync()
        #expect(synced.written == 300 && synced.passes.contains(.full))
        let firstPage = try await mirror.contacts(matching: ContactQuery(limit: 10))
        #expect(firstPage.contacts.count == 10 && firstPage.nextCursor != nil)
        let someone = try #require(firstPage.contacts.first)
        #expect(try await mirror.contact(id: someone.id)?.contact == someone.contact)
        #expect(try await mirror.contact(id: "no-such-contact") == nil)

        let staged = try await mirror.stageContact(ContactDraft(role: .lead, email: "new.lead@example.com", name: "New"))
        try await mirror.stageMessage(MessageDraft(kind: .inApp, body: "Welcome", to: staged.localID))
        let local = try #require(try await mirror.contact(id: staged.localID))
        #expect(local.state == .pending && local.contact.email == "new.lead@example.com")
        var status = try await mirror.status()
        #expect(status.outbox.pending == 2)
        #expect(status.contacts.pending == 1 && status.contacts.synced == 300)
        #expect(status.lastFullPullAt != nil)

        let flushed = try await mirror.flush()
        #expect(flushed.contactsCreated == 1 && flushed.messagesSent == 1 && flushed.stoppedBy == nil)
        let created = try #require(try await mirror.contact(id: staged.localID))
        #expect(created.state == .synced && created.id != staged.localID)
        #expect(await simulator.workspace.sentMessages().count == 1)

        let refreshed = try await mirror.refreshContact(id: someone.id)
        #expect(refreshed.source == .revalidated && refreshed.contact?.id == someone.id)

        let csv = folder.path("people.csv")
        try "email,name\na@example.com,A\nnot-an-email,B\nb@example.com,B\n".write(
            toFile: csv, atomically: true, encoding: .utf8)
        let rejected = Shared<[Int]>([])
        let imported = try await mirror.importCSV(
            from: URL(fileURLWithPath: csv),
            onRejected: { rejection, _ in
                rejected.withLock { $0.append(rejection.line) }
            })
        #expect(imported.imported == 2 && imported.rejected == 1)
        #expect(rejected.withLock { $0 } == [3])
        let waiting = try await mirror.status().outbox
        #expect(waiting.pending == 2 && waiting.importsWaiting == 2 && waiting.entries(in: [.pending]) == 0)
        #expect(try await mirror.flush().contactsCreated == 2)
        status = try await mirror.status()
        #expect(status.outbox.pending == 0 && status.outbox.sent == 4)
        #expect(status.contacts.synced == 303 && status.contacts.pending == 0)

        let again = try await mirror.sync()
        #expect(again.passes == [.incremental])
        try mirror.close()
    }

    /// Tags, links and outbox decisions through the facade.
    @Test func tagsLinksAndDroppingAnEntry() async throws {
        let fixture = try await Self.start(contacts: 200, tags: 6)
        let mirror = fixture.mirror
        defer { fixture.stop() }
        try await mirror.sync()
        let tags = try await mirror.tags()
        #expect(tags.count == 6 && tags.contains { $0.contacts > 0 })
        let tagged = try #require(tags.max { $0.contacts < $1.contacts })
        let carriers = try await mirror.contacts(matching: ContactQuery(tags: [tagged.name], limit: 500))
        #expect(carriers.contacts.count == tagged.contacts)

        let someone = try #require(try await mirror.contacts(matching: ContactQuery(limit: 1)).contacts.first)
        try await mirror.stageTagging(contact: someone.id, tags: ["Facade Fan"])
        #expect(try await mirror.links(ofContact: someone.id).tags.contains("Facade Fan"))
        #expect(try await mirror.contacts(matching: ContactQuery(tags: ["facade fan"])).contacts.map(\.id) == [someone.id])

        let staged = try await mirror.stageContact(ContactDraft(email: "dropped@example.com"))
        let message = try await mirror.stageMessage(MessageDraft(kind: .inApp, body: "never sent", to: staged.localID))
        await #expect(throws: OutboxError.self) { try await mirror.dropEntry(seq: staged.seq) }
        #expect(
            try await mirror.dropEntry(seq: staged.seq, cascade: true)
                == DroppedEntries(seqs: [staged.seq, message.seq], removedContactID: staged.localID))
        #expect(try await mirror.contact(id: staged.localID) == nil)
        let flushed = try await mirror.flush()
        #expect(flushed.taggings == 1 && flushed.contactsCreated == 0 && flushed.messagesSent == 0)
    }

    /// A mirror opened without a connection answers from the file and stages; what needs
    /// Intercom says so.
    @Test func withoutAConnectionReadsAndStagesButDoesNotSync() async throws {
        let folder = try TemporaryDirectory()
        let mirror = try await IntercomMirror.open(at: folder.path("offline.sqlite"))
        let staged = try await mirror.stageContact(ContactDraft(email: "offline@example.com"))
        #expect(try await mirror.contact(id: staged.localID)?.contact.email == "offline@example.com")
        #expect(try await mirror.status().outbox.pending == 1)
        await #expect {
            try await mirror.sync()
        } throws: { error in
            (error as? SyncError)?.kind == .notConnected
        }
        await #expect {
            try await mirror.flush()
        } throws: { error in
            (error as? SyncError)?.kind == .notConnected
        }
        #expect(try await mirror.status().outbox.pending == 1)
    }

    /// A connection that would send the token in clear to another machine is refused unless
    /// the configuration allows it; loopback is fine.
    @Test func aTokenInClearToAnotherMachineIsRefused() throws {
        let remote = IntercomConnection(baseURL: URL(string: "http://intercom.example.com")!, accessToken: "secret")
        #expect {
            try IntercomMirror.inMemory(connection: remote)
        } throws: { error in
            (error as? IntercomError)?.code == "insecure_base_url" && !"\(error)".contains("secret")
        }
        _ = try IntercomMirror.inMemory(
            connection: remote, configuration: IntercomMirror.Configuration(allowsInsecureHTTP: true))
        let loopback = IntercomConnection(baseURL: URL(string: "http://127.0.0.1:8700")!, accessToken: "secret")
        _ = try IntercomMirror.inMemory(connection: loopback)
    }

    /// The injected clock is what the mirror records, not the system's.
    @Test func stagingReadsTheInjectedClock() async throws {
        let pinned = Date(timeIntervalSince1970: 1_600_000_000)
        let mirror = try IntercomMirror.inMemory(configuration: IntercomMirror.Configuration(clock: .fixed(pinned)))
        let staged = try await mirror.stageContact(ContactDraft(email: "clock@example.com"))
        let stored = try #require(try await mirror.contact(id: staged.localID))
        #expect(stored.contact.createdAt == 1_600_000_000 && stored.contact.updatedAt == 1_600_000_000)
        let entry = try #require(try await mirror.outbox().first)
        #expect(entry.createdAt == 1_600_000_000)
    }

    /// `observe` yields the query's page at once, then again after a sync in this process and
    /// after staging, and not for a change that leaves the page as it was.
    @Test(.timeLimit(.minutes(1))) func observeYieldsAfterASyncInThisProcess() async throws {
        let fixture = try await Self.start(contacts: 40)
        let mirror = fixture.mirror
        defer { fixture.stop() }
        let pages = mirror.observe(ContactQuery(role: .lead, sort: ContactSort(.email), limit: 500))
        var iterator = pages.makeAsyncIterator()
        let first = try #require(try await iterator.next())
        #expect(first.contacts.isEmpty)

        try await mirror.sync()
        let afterSync = try #require(try await iterator.next())
        let leads = try await mirror.contacts(matching: ContactQuery(role: .lead, sort: ContactSort(.email), limit: 500))
        #expect(!afterSync.contacts.isEmpty && afterSync == leads)

        // A user staged: not on this page, so no new page. A lead staged: a new page.
        try await mirror.stageContact(ContactDraft(role: .user, email: "user@example.com"))
        try await mirror.stageContact(ContactDraft(role: .lead, email: "aaa.lead@example.com"))
        let afterStaging = try #require(try await iterator.next())
        #expect(afterStaging.contacts.first?.contact.email == "aaa.lead@example.com")
        #expect(afterStaging.contacts.count == leads.contacts.count + 1)
    }

    /// `observeStatus` follows the outbox through staging and a flush.
    @Test(.timeLimit(.minutes(1))) func observeStatusFollowsTheOutbox() async throws {
        let fixture = try await Self.start(contacts: 5)
        let mirror = fixture.mirror
        defer { fixture.stop() }
        try await mirror.sync()
        var statuses = mirror.observeStatus().makeAsyncIterator()
        #expect(try await statuses.next()?.outbox.pending == 0)
        try await mirror.stageContact(ContactDraft(email: "badge@example.com"))
        #expect(try await statuses.next()?.outbox.pending == 1)
        try await mirror.flush()
        var status = try #require(try await statuses.next())
        while status.outbox.pending > 0 || status.outbox.inFlight > 0 {
            status = try #require(try await statuses.next())
        }
        #expect(status.outbox.sent == 1 && status.contacts.pending == 0)
    }

    /// A sync and a flush started together on one mirror take turns, and both complete.
    @Test func syncAndFlushStartedTogetherBothComplete() async throws {
        let fixture = try await Self.start(contacts: 600)
        let mirror = fixture.mirror
        defer { fixture.stop() }
        for index in 0..<5 {
            try await mirror.stageContact(ContactDraft(email: "together\(index)@example.com"))
        }
        async let synced = mirror.sync()
        async let flushed = mirror.flush()
        let (sync, flush) = try await (synced, flushed)
        #expect(flush.contactsCreated == 5 && flush.stoppedBy == nil)
        #expect(sync.fetched >= 600)
        let status = try await mirror.status()
        #expect(status.contacts.synced == 605 && status.outbox.sent == 5)
        // Twice more, the other way round, on a mirror that now has a watermark.
        try await mirror.stageMessage(MessageDraft(kind: .inApp, body: "hi", to: "together0@example.com"))
        async let flushedAgain = mirror.flush()
        async let syncedAgain = mirror.sync()
        let (flushAgain, _) = try await (flushedAgain, syncedAgain)
        #expect(flushAgain.messagesSent == 1)
    }

    /// Long work runs on the engine's threads: its progress comes from them, never from the
    /// cooperative pool (whose threads the test finds by name: it runs on one itself).
    @Test func longWorkRunsOffTheCooperativePool() async throws {
        let fixture = try await Self.start(contacts: 400)
        let (mirror, folder) = (fixture.mirror, fixture.folder)
        defer { fixture.stop() }
        let cooperative = threadName()
        let places = Shared<[String]>([])
        try await mirror.sync { _ in places.withLock { $0.append(threadName()) } }
        let csv = folder.path("many.csv")
        try ("email\n" + (0..<25_000).map { "row\($0)@example.com" }.joined(separator: "\n")).write(
            toFile: csv, atomically: true, encoding: .utf8)
        try await mirror.importCSV(
            from: URL(fileURLWithPath: csv),
            progress: { _ in
                places.withLock { $0.append(threadName()) }
            })
        let seen = places.withLock { $0 }
        #expect(seen.count >= 4)
        #expect(!seen.contains(cooperative), "work ran on \(cooperative), the cooperative pool")
    }
}

/// The name of the calling thread, as the system shows it.
func threadName() -> String { Thread.current.name ?? "" }

/// The turn queue behind the facade's sync, flush and import.
@Suite struct TurnQueueTests {
    @Test func workRunsOneAtATimeInTheOrderItAsked() async throws {
        let turns = TurnQueue()
        let log = Shared<[Int]>([])
        let inside = Shared(0)
        let overlaps = Shared(0)
        let (gate, opened) = AsyncStream<Void>.makeStream()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<8 {
                group.addTask {
                    try await turns.run {
                        if inside.withLock({
                            $0 += 1; return $0 > 1
                        }) {
                            overlaps.withLock { $0 += 1 }
                        }
                        log.withLock { $0.append(index) }
                        // The first holds the turn until every other one is in line.
                        if index == 0 { for await _ in gate { break } }
                        try await Task.sleep(for: .milliseconds(2))
                        inside.withLock { $0 -= 1 }
                    }
                }
                // Each asks only once the one before it is running or in line.
                try await Self.until { log.withLock { $0.count } + turns.waiting == index + 1 }
            }
            opened.yield()
            try await group.waitForAll()
        }
        #expect(overlaps.withLock { $0 } == 0)
        #expect(log.withLock { $0 } == Array(0..<8))
    }

    /// Polls `condition` every millisecond, failing after 10 s.
    static func until(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            try #require(ContinuousClock.now < deadline, "the condition never held")
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    @Test func aFailingTurnPassesTheTurnOn() async throws {
        let turns = TurnQueue()
        struct Failure: Error {}
        await #expect(throws: Failure.self) { try await turns.run { throw Failure() } }
        #expect(try await turns.run { 42 } == 42)
    }
}

/// A value several tasks change, behind a lock.
final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>

    init(_ value: Value) {
        self.value = Mutex(value)
    }

    func withLock<T>(_ body: (inout Value) -> T) -> T {
        value.withLock { body(&$0) }
    }
}
