import Foundation
import IntercomSimulator
import Testing

@testable import IntercomSync

@Suite struct SyncFaultTests {
    @Test func pullsConvergeUnderFaultsAndHonourResets() async throws {
        // The wall clock, so rate-limit windows pass in real time: 6 requests a second.
        let harness = try await SimulatorHarness.start(contacts: 3_000, startTime: nil, timeout: 2) {
            $0.rateLimit = 6
            $0.rateLimitWindowSeconds = 1
            var faults = FaultPlan()
            faults.latencyMilliseconds = 5
            faults.jitterMilliseconds = 10
            faults.serverErrorRate = 0.1
            faults.rateLimitBurstRate = 0.08
            faults.rateLimitBurstLength = 2
            faults.truncatedBodyRate = 0.05
            faults.lostResponseRate = 0.08
            faults.lostResponseDelaySeconds = 2.5
            faults.seed = 6
            $0.faults = faults
        }
        defer { Task { await harness.stop() } }
        let full = try await harness.sync.run()
        #expect(try await harness.differences() == [])

        let ids = await harness.workspace.contactIDs()
        for id in ids.prefix(20) {
            try await harness.workspace.edit(id: id, fieldsJSON: #"{"name": "Edited Under Load"}"#)
        }
        let incremental = try await harness.sync.run()
        #expect(incremental.passes == [.incremental])
        #expect(try await harness.differences() == [])

        let log = await harness.workspace.requestLog()
        let statuses = log.map(\.status)
        #expect(statuses.contains { $0 >= 500 })
        #expect(statuses.contains(429))
        #expect(log.contains { $0.lost })
        #expect(full.retries + incremental.retries > 0)
        // After a 429 every request waits for that window's reset, but for those already in flight
        // when the 429 came back: a walk fetches its next page while it writes the last, and the
        // tag, segment and company lists are read beside it, one request each at a time.
        let streams = 4
        for (index, entry) in log.enumerated().dropLast() where entry.status == 429 {
            let reset = try #require(entry.rateLimitReset)
            let early = log[(index + 1)...].prefix { $0.time < reset }.count
            #expect(early <= streams - 1, "\(early) requests came before the reset of 429 #\(index)")
        }
    }

    @Test func revokedTokenAsksToConnectAgainAndNeverShowsTheToken() async throws {
        let harness = try await SimulatorHarness.start(contacts: 10)
        defer { Task { await harness.stop() } }
        await harness.workspace.revoke(token: harness.simulator.accessToken)
        let error = try await #require(throws: IntercomError.self) { try await harness.sync.run() }
        #expect(error.kind == .authentication)
        #expect(error.code == "token_revoked")
        #expect(error.remedy == .reconnect && error.description.contains("refused the access token"))
        #expect(!error.description.contains(harness.simulator.accessToken))
        #expect(await harness.workspace.requestLog().count == 1, "no retry of a refused token")
    }

    @Test func secondPullIsRefusedWhileOneHoldsTheLock() async throws {
        let harness = try await SimulatorHarness.start(contacts: 10)
        defer { Task { await harness.stop() } }
        let lock = try MirrorLock.acquire(harness.mirror, purpose: "intercom-sync outbox flush")
        let error = try await #require(throws: SyncError.self) { try await harness.sync.run() }
        #expect(error.kind == .busy)
        #expect(error.description.contains("intercom-sync outbox flush (pid \(getpid())"))
        // Queries keep working meanwhile.
        #expect(try harness.mirror.count() == 0)
        withExtendedLifetime(lock) {}
    }
}
