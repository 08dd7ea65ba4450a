import Foundation
import IntercomSync
import PostgresNIO
import Synchronization
import Testing

@testable import IntercomSyncTeam

/// The team store against a real PostgreSQL: its schema, its connection failures, and the
/// team outbox that flush workers on several machines drain.
@Suite(.enabled(if: TeamTestStore.url != nil, TeamTestStore.missing), .serialized)
struct TeamStoreTests {
    // MARK: Schema

    /// Several processes opening a new store at once migrate it once, and a store a newer
    /// intercom-sync wrote is refused, naming both versions.
    @Test func opensMigrateOnceAndANewerStoreIsRefused() async throws {
        let url = try await TeamTestStore.freshDatabase()
        let stores = try await withThrowingTaskGroup(of: TeamStore.self) { group in
            for _ in 0..<5 { group.addTask { try await TeamStore.open(url) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(stores.count == 5)
        let (version, writer) = try await stores[0].schemaVersion()
        #expect(version == 5 && writer == IntercomSyncVersion.library)
        for store in stores { await store.close() }

        try await TeamTestStore.admin(url) { connection in
            try await connection.query("UPDATE team_schema SET version = 99, written_by = '9.0.0'", logger: TeamTestStore.logger)
        }
        let error = try await #require(throws: TeamStoreError.self) { try await TeamStore.open(url) }
        #expect(error.kind == .newerSchema && error.remedy == .upgrade)
        #expect(error.description.contains("99") && error.description.contains("9.0.0"), "\(error)")
    }

    /// A refused login and an unreachable server say so, naming the store without its password.
    @Test func aWrongPasswordAndAClosedPortAreToldApart() async throws {
        var url = try #require(TeamTestStore.url)
        let password = try #require(url.password)
        url.password = "not-" + password
        let refused = try await #require(throws: TeamStoreError.self) {
            try await TeamStore.open(url, reconnectPatience: .seconds(1))
        }
        #expect(refused.kind == .authentication, "\(refused)")
        #expect(!refused.description.contains(password) && !refused.description.contains(url.password!))

        var closed = try #require(TeamTestStore.url)
        closed.port = 1
        let started = ContinuousClock.now
        let unreachable = try await #require(throws: TeamStoreError.self) {
            try await TeamStore.open(closed, reconnectPatience: .milliseconds(500))
        }
        #expect(unreachable.kind == .unreachable, "\(unreachable)")
        #expect(unreachable.description.contains("127.0.0.1:1") && !unreachable.description.contains(password))
        #expect(ContinuousClock.now - started < .seconds(10), "the patience bounds the wait")
    }

    // MARK: Pushing

    static func message(_ seq: Int64, to contact: String = "c1", waitsFor: Int64? = nil) -> PushedEntry {
        PushedEntry(
            originSeq: seq, kind: .sendMessage, contactID: contact, dependsOnOriginSeq: waitsFor,
            payload: #"{"body":"message \#(seq)"}"#, createdAt: 1_767_225_600)
    }

    /// A push repeated after a lost answer adds nothing; a number reused for another entry is
    /// refused; a dependency is kept by the team's sequence numbers.
    @Test func pushesAreIdempotentAndKeepTheirDependencies() async throws {
        let store = try await TeamStore.open(try await TeamTestStore.freshDatabase())
        defer { Task { await store.close() } }
        let create = PushedEntry(
            originSeq: 7, kind: .createContact, contactID: "local_a", payload: #"{"email":"a@example.com"}"#,
            createdAt: 1_767_225_600)
        let first = try await store.push([create, Self.message(8, to: "local_a", waitsFor: 7)], from: "laptop-ann", now: 1)
        let again = try await store.push([create, Self.message(8, to: "local_a", waitsFor: 7)], from: "laptop-ann", now: 2)
        #expect(first == again && first.count == 2)
        let other = try await store.push([create], from: "laptop-bob", now: 3)
        #expect(other != [first[0]], "another agent's entry 7 is another entry")

        let entries = try await store.outboxEntries()
        #expect(entries.count == 3)
        #expect(entries.first { $0.entry.seq == first[1] }?.entry.dependsOn == first[0])
        #expect(entries.allSatisfy { $0.entry.state == .pending })

        // While no worker has taken it, an entry takes the payload pushed last; after, it stays.
        var changed = Self.message(8, to: "local_a", waitsFor: 7)
        changed.payload = #"{"body":"something else"}"#
        #expect(try await store.push([changed], from: "laptop-ann", now: 4) == [first[1]])
        #expect(try await store.outboxEntries().first { $0.entry.seq == first[1] }?.entry.payload == changed.payload)
        let taken = try await store.claim(worker: "w", lease: .seconds(60), limit: 1, kinds: [.createContact], now: 4)
        #expect(taken.map(\.entry.seq) == [first[0]])
        var edited = create
        edited.payload = #"{"email":"a@example.com","name":"A"}"#
        #expect(try await store.push([edited], from: "laptop-ann", now: 5) == [first[0]])
        #expect(try await store.outboxEntries().first { $0.entry.seq == first[0] }?.entry.payload == create.payload)
        // Ended failed: a repeated push leaves it so; one a person retried queues it again.
        try await store.settle(
            seq: first[0], fence: taken[0].fence, state: .failed,
            error: OutboxEntry.Failure(status: 422, code: "parameter_invalid", message: "no", requestID: nil), now: 5)
        _ = try await store.push([create], from: "laptop-ann", now: 6)
        #expect(try await store.outboxEntries().first { $0.entry.seq == first[0] }?.entry.state == .failed)
        var retried = create
        retried.retryMark = 6
        _ = try await store.push([retried], from: "laptop-ann", now: 7)
        let requeued = try await store.outboxEntries().first { $0.entry.seq == first[0] }?.entry
        #expect(requeued?.state == .pending && requeued?.lastError == nil)
        // The same retry pushed again (its answer lost) after the entry failed again: left so.
        let again2 = try await store.claim(worker: "w", lease: .seconds(60), limit: 1, kinds: [.createContact], now: 8)
        try await store.settle(
            seq: first[0], fence: again2[0].fence, state: .failed,
            error: OutboxEntry.Failure(status: 422, code: "parameter_invalid", message: "no", requestID: nil), now: 9)
        _ = try await store.push([retried], from: "laptop-ann", now: 10)
        #expect(try await store.outboxEntries().first { $0.entry.seq == first[0] }?.entry.state == .failed)
        var otherKind = changed
        otherKind.kind = .addNote
        let reused = try await #require(throws: TeamStoreError.self) {
            try await store.push([otherKind], from: "laptop-ann", now: 4)
        }
        #expect(reused.kind == .badEntry)
        let orphan = try await #require(throws: TeamStoreError.self) {
            try await store.push([Self.message(9, waitsFor: 99)], from: "laptop-ann", now: 4)
        }
        #expect(orphan.kind == .badEntry && orphan.description.contains("#99"))
        #expect(try await store.outboxEntries().count == 3, "a refused push adds nothing")
    }

    // MARK: Claiming

    /// Six workers claiming at once, a few entries at a time, each get different entries, and
    /// all of them between them; a message that waits for a create is claimed only once the
    /// create was sent.
    @Test func concurrentWorkersClaimEachEntryOnce() async throws {
        let url = try await TeamTestStore.freshDatabase()
        let setup = try await TeamStore.open(url)
        let create = PushedEntry(
            originSeq: 1, kind: .createContact, contactID: "local_z", payload: #"{"email":"z@example.com"}"#,
            createdAt: 1)
        let pushed = try await setup.push(
            [create] + (2...301).map { Self.message(Int64($0)) } + [Self.message(302, to: "local_z", waitsFor: 1)],
            from: "laptop", now: 1)
        await setup.close()

        let workers = try await withThrowingTaskGroup(of: [ClaimedEntry].self) { group in
            for worker in 0..<6 {
                group.addTask {
                    let store = try await TeamStore.open(url)
                    do {
                        var mine: [ClaimedEntry] = []
                        while true {
                            let claimed = try await store.claim(
                                worker: "w\(worker)", lease: .seconds(60), limit: 2, now: 10)
                            if claimed.isEmpty { break }
                            mine += claimed
                        }
                        for entry in mine where entry.entry.kind != .createContact {
                            try await store.settle(seq: entry.entry.seq, fence: entry.fence, state: .sent, now: 11)
                        }
                        await store.close()
                        return mine
                    } catch {
                        await store.close()
                        throw error
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let claimed = workers.flatMap { $0 }.map(\.entry.seq)
        #expect(Set(claimed).count == claimed.count, "no entry claimed twice")
        #expect(Set(claimed) == Set(pushed.dropLast()), "every ready entry claimed; the waiting message not yet")
        let fences = workers.flatMap { $0 }.map(\.fence)
        #expect(Set(fences).count == fences.count, "each claim has its own fence")

        let store = try await TeamStore.open(url)
        defer { Task { await store.close() } }
        let createClaim = try #require(workers.flatMap { $0 }.first { $0.entry.kind == .createContact })
        #expect(try await store.claim(worker: "w9", lease: .seconds(60), limit: 10, now: 12).isEmpty)
        try await store.settle(
            seq: createClaim.entry.seq, fence: createClaim.fence, state: .sent, remoteID: "abc123", now: 12)
        let waiting = try await store.claim(worker: "w9", lease: .seconds(60), limit: 10, now: 13)
        #expect(waiting.map(\.entry.seq) == [pushed.last!])
        #expect(waiting.first?.contactID == "abc123", "a message to a pushed contact goes to its Intercom id")
    }

    /// A worker whose lease ran out cannot settle what it held: the entry went back to the
    /// queue and another worker took it under a new fence. A message whose lease ran out may
    /// have reached Intercom: it becomes unknown, and no worker takes it again.
    @Test func anExpiredLeaseIsFencedOffAndAMessageBecomesUnknown() async throws {
        let store = try await TeamStore.open(try await TeamTestStore.freshDatabase())
        defer { Task { await store.close() } }
        let tag = PushedEntry(
            originSeq: 1, kind: .tagContact, contactID: "c1", payload: #"{"name":"VIP"}"#, createdAt: 1)
        _ = try await store.push([tag, Self.message(2)], from: "laptop", now: 1)
        let stale = try await store.claim(worker: "slow", lease: .milliseconds(300), limit: 10, now: 2)
        #expect(stale.count == 2)
        try await Task.sleep(for: .milliseconds(600))

        let fresh = try await store.claim(worker: "fast", lease: .seconds(60), limit: 10, now: 3)
        #expect(fresh.map(\.entry.kind) == [.tagContact], "the message is not claimed again")
        let staleTag = try #require(stale.first { $0.entry.kind == .tagContact })
        #expect(fresh[0].fence != staleTag.fence)
        let fenced = try await #require(throws: TeamStoreError.self) {
            try await store.settle(seq: staleTag.entry.seq, fence: staleTag.fence, state: .sent, now: 4)
        }
        #expect(fenced.kind == .fenced)
        await #expect(throws: TeamStoreError.self) {
            try await store.renewLease(seq: staleTag.entry.seq, fence: staleTag.fence, lease: .seconds(60))
        }
        try await store.renewLease(seq: fresh[0].entry.seq, fence: fresh[0].fence, lease: .seconds(60))
        try await store.settle(seq: fresh[0].entry.seq, fence: fresh[0].fence, state: .sent, now: 5)

        let entries = try await store.outboxEntries()
        let message = try #require(entries.first { $0.entry.kind == .sendMessage })
        #expect(message.entry.state == .unknown && message.entry.lastError?.code == "lease_expired")
        #expect(message.entry.lastError?.message.contains("slow") == true)
        #expect(entries.first { $0.entry.kind == .tagContact }?.entry.state == .sent)
    }

    /// A PostgreSQL restarted under a worker costs a retry, not the operation: the store
    /// connects again and the work goes on.
    @Test func aRestartedPostgreSQLCostsARetry() async throws {
        let store = try await TeamStore.open(try await TeamTestStore.freshDatabase(), reconnectPatience: .seconds(30))
        defer { Task { await store.close() } }
        _ = try await store.push((1...20).map { Self.message(Int64($0)) }, from: "laptop", now: 1)
        let before = try await store.claim(worker: "w", lease: .seconds(60), limit: 5, now: 2)
        try await TeamTestStore.restartCluster()
        for claim in before {
            try await store.settle(seq: claim.entry.seq, fence: claim.fence, state: .sent, now: 3)
        }
        let after = try await store.claim(worker: "w", lease: .seconds(60), limit: 100, now: 4)
        #expect(after.count == 15)
        #expect(try await store.outboxEntries(states: [.sent]).count == 5)
    }

    /// A claim whose commit's answer was lost is tried again and answers the entries its first
    /// try took: none is left in flight behind the worker's back until its lease runs out, and
    /// the next claim takes the next entries.
    @Test func aClaimWhoseAnswerWasLostAnswersWhatItTook() async throws {
        let store = try await TeamStore.open(try await TeamTestStore.freshDatabase())
        defer { Task { await store.close() } }
        _ = try await store.push((1...6).map { Self.message(Int64($0)) }, from: "laptop", now: 1)
        await store.loseNextCommitAnswer(of: "claiming")
        let first = try await store.claim(worker: "w", lease: .seconds(60), limit: 2, now: 2)
        #expect(first.map(\.entry.seq) == [1, 2])
        let inFlight = try await store.outboxEntries(states: [.inFlight]).map(\.entry.seq)
        #expect(inFlight == [1, 2], "only what the worker knows it holds is in flight")
        let next = try await store.claim(worker: "w", lease: .seconds(60), limit: 2, now: 3)
        #expect(next.map(\.entry.seq) == [3, 4])
    }

    /// An operation waiting on a connection that closed under it fails as a lost connection at
    /// once, and is tried again on a new one, whatever it was waiting for.
    @Test func anOperationWhoseConnectionClosesIsTriedAgain() async throws {
        let url = try await TeamTestStore.freshDatabase()
        let store = try await TeamStore.open(url, reconnectPatience: .seconds(30))
        defer { Task { await store.close() } }
        let tries = Atomic(0)
        let started = ContinuousClock.now
        let answer = try await store.run("waiting") { connection in
            guard tries.add(1, ordering: .relaxed).newValue == 1 else { return "again" }
            // A query written to a connection already torn down gets no answer, ever.
            try await connection.close()
            try await connection.query("SELECT 1", logger: TeamTestStore.logger)
            return "first"
        }
        #expect(answer == "again")
        #expect(ContinuousClock.now - started < .seconds(20), "the closed connection was not waited out")
    }

    /// The puller's lock goes with its session: after a restart the lease takes it again, and a
    /// second puller is still refused; when another took it first, the lease says who.
    @Test func thePullersLeaseTakesItsLockAgainAfterARestart() async throws {
        let url = try await TeamTestStore.freshDatabase()
        let first = try await TeamStore.open(url, reconnectPatience: .seconds(30))
        defer { Task { await first.close() } }
        let lease = try await first.holdPuller(as: "puller-a")
        let lost = Mutex<String?>(nil)
        lease.keep { holder in lost.withLock { $0 = holder } }
        try await TeamTestStore.restartCluster()
        let locks = """
            SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
                AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """
        let deadline = ContinuousClock.now + .seconds(20)
        var held = 0
        while held == 0 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            held = try await TeamTestStore.admin(url) { connection in
                var count = 0
                for try await found in try await connection.query(PostgresQuery(unsafeSQL: locks), logger: TeamTestStore.logger)
                    .decode(Int64.self)
                {
                    count = Int(found)
                }
                return count
            }
        }
        #expect(held == 1, "the lease took its lock again")
        let second = try await TeamStore.open(url)
        defer { Task { await second.close() } }
        let refused = try await #require(throws: TeamStoreError.self) { try await second.holdPuller(as: "puller-b") }
        #expect(refused.kind == .busy && refused.detail.contains("puller-a"), "\(refused.detail)")

        // Another waits for the place, and takes it the moment the lease's session is cut.
        try await TeamTestStore.admin(url) { intruder in
            try await intruder.query("UPDATE team_puller SET holder = 'intruder'", logger: TeamTestStore.logger)
            async let waited = intruder.query(
                "SELECT pg_advisory_lock(\(TeamSchema.pullerLock))", logger: TeamTestStore.logger)
            try await Task.sleep(for: .milliseconds(300))
            try await TeamTestStore.admin(url) { cutter in
                try await cutter.query(
                    PostgresQuery(
                        unsafeSQL: """
                            SELECT pg_terminate_backend(pid, 5000) FROM pg_locks
                            WHERE locktype = 'advisory' AND granted
                                AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                            """), logger: TeamTestStore.logger)
            }
            _ = try await waited
            let gone = ContinuousClock.now + .seconds(20)
            while lost.withLock({ $0 }) == nil && ContinuousClock.now < gone {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(lost.withLock { $0 }?.contains("intruder") == true, "the lease says who took its place")
        await lease.release()
    }

    /// The workers' rate budget kept in the store: the lowest remaining reported for a window
    /// stands, a later window replaces it, an older one is ignored, and a worker that reports
    /// nothing yet learns it.
    @Test func theRateBudgetIsOneForAllWorkers() async throws {
        let store = try await TeamStore.open(try await TeamTestStore.freshDatabase())
        defer { Task { await store.close() } }
        typealias Budget = RateLimitGovernor.Budget
        #expect(try await store.exchange(nil) == nil)
        #expect(try await store.exchange(Budget(limit: 1667, remaining: 900, reset: 5_000))?.remaining == 900)
        #expect(try await store.exchange(Budget(limit: 1667, remaining: 1200, reset: 5_000))?.remaining == 900)
        #expect(try await store.exchange(Budget(limit: 1667, remaining: 400, reset: 5_000))?.remaining == 400)
        #expect(try await store.exchange(nil) == Budget(limit: 1667, remaining: 400, reset: 5_000))
        #expect(try await store.exchange(Budget(limit: 1667, remaining: 1600, reset: 5_010))?.remaining == 1600)
        #expect(
            try await store.exchange(Budget(limit: 1667, remaining: 10, reset: 5_000))
                == Budget(limit: 1667, remaining: 1600, reset: 5_010), "an answer from the window before")
    }

}
