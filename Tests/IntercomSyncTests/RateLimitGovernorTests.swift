import Foundation
import Synchronization
import Testing

@testable import IntercomSync

/// A clock that moves only when the governor sleeps.
final class ManualTime: Sendable {
    private let state = Mutex((now: 1_000.0, sleeps: [Double]()))

    var now: Double { state.withLock { $0.now } }
    var sleeps: [Double] { state.withLock { $0.sleeps } }

    func sleep(_ seconds: Double) {
        state.withLock {
            $0.now += seconds
            $0.sleeps.append(seconds)
        }
    }

    func governor(reserve: Int = 2) -> RateLimitGovernor {
        RateLimitGovernor(reserve: reserve, now: { self.now }, sleep: { self.sleep($0) })
    }

    func response(limit: Int, remaining: Int, reset: Double, status: Int = 200) -> HTTPResponse {
        HTTPResponse(
            status: status,
            headers: [
                "X-RateLimit-Limit": "\(limit)", "X-RateLimit-Remaining": "\(remaining)",
                "X-RateLimit-Reset": "\(Int(reset))",
            ])
    }
}

@Suite struct RateLimitGovernorTests {
    @Test func letsRequestsThroughWhileTheBudgetLasts() async throws {
        let time = ManualTime()
        let governor = time.governor()
        await governor.record(time.response(limit: 100, remaining: 50, reset: time.now + 5))
        for _ in 0..<40 { try await governor.acquire() }
        #expect(time.sleeps.isEmpty)
    }

    @Test func waitsForTheResetWhenTheBudgetRunsLow() async throws {
        let time = ManualTime()
        let governor = time.governor()
        await governor.record(time.response(limit: 100, remaining: 4, reset: time.now + 6))
        try await governor.acquire()
        try await governor.acquire()
        #expect(time.sleeps.isEmpty)
        // 4 remaining, 2 let through, 2 kept in reserve: the next waits for the reset.
        try await governor.acquire()
        #expect(time.sleeps.count == 1)
        #expect(time.sleeps[0] >= 6 && time.sleeps[0] <= 6.2)
    }

    /// A budget kept in common with other processes (a team's flush workers): what they spent
    /// of the window counts here too, a fresh governor starts from it rather than from a full
    /// window, and neither an older window nor a higher remaining raises the budget.
    @Test func adoptsWhatOthersSpentOfTheWindow() async throws {
        let time = ManualTime()
        let governor = time.governor()
        await governor.adopt(RateLimitGovernor.Budget(limit: 100, remaining: 3, reset: time.now + 4))
        try await governor.acquire()
        #expect(time.sleeps.isEmpty)
        try await governor.acquire()
        #expect(time.sleeps.count == 1 && time.sleeps[0] >= 4, "3 left, 2 in reserve: the second waits for the reset")

        let own = time.governor()
        await own.record(time.response(limit: 100, remaining: 60, reset: time.now + 8))
        await own.adopt(RateLimitGovernor.Budget(limit: 100, remaining: 90, reset: time.now + 8))
        await own.adopt(RateLimitGovernor.Budget(limit: 100, remaining: 1, reset: time.now - 1))
        #expect(await own.budget?.remaining == 60, "a higher remaining or an ended window changes nothing")
        await own.adopt(RateLimitGovernor.Budget(limit: 100, remaining: 5, reset: time.now + 8))
        #expect(await own.budget?.remaining == 5)

        // Only what an answer confirmed is shared: a full window guessed at a reset is not.
        #expect(await own.confirmedBudget?.remaining == 5)
        time.sleep(9)
        try await own.acquire()
        #expect(await own.budget?.remaining == 100)
        #expect(await own.confirmedBudget == nil)
    }

    @Test func a429BlocksEveryCallerUntilTheReset() async throws {
        let time = ManualTime()
        let governor = time.governor()
        let reset = time.now + 3
        await governor.rateLimited(time.response(limit: 10, remaining: 0, reset: reset, status: 429), fallback: 1)
        try await governor.acquire()
        #expect(time.now >= reset)
        #expect(time.now <= reset + 0.2)
    }

    @Test func a429WithoutHeadersWaitsTheFallback() async throws {
        let time = ManualTime()
        let governor = time.governor()
        await governor.rateLimited(HTTPResponse(status: 429), fallback: 1.5)
        try await governor.acquire()
        #expect(time.sleeps == [1.5])
    }

    @Test func lateAnswersDoNotRaiseTheBudget() async throws {
        let time = ManualTime()
        let governor = time.governor()
        let reset = time.now + 8
        await governor.record(time.response(limit: 100, remaining: 10, reset: reset))
        await governor.record(time.response(limit: 100, remaining: 30, reset: reset))
        #expect(await governor.budget?.remaining == 10)
        await governor.record(time.response(limit: 100, remaining: 90, reset: reset - 10))
        #expect(await governor.budget?.remaining == 10)
    }

    @Test func aResetFarAwayIsCappedAsClockSkew() async throws {
        let time = ManualTime()
        let governor = time.governor()
        await governor.record(time.response(limit: 100, remaining: 1, reset: time.now + 86_400))
        try await governor.acquire()
        #expect(time.sleeps.count == 1)
        #expect(time.sleeps[0] <= 10.2)
    }

    @Test func requestsInFlightWhenAWindowOpensStayCounted() async throws {
        let time = ManualTime()
        let governor = time.governor(reserve: 2)
        await governor.record(time.response(limit: 40, remaining: 40, reset: time.now + 10))
        // 30 requests go out as the next window opens; the answer to the first of them, the
        // first of the new window, arrives after all were sent: 39 remain as it was counted.
        var tickets: [Int] = []
        for _ in 0..<30 { tickets.append(try await governor.acquire()) }
        await governor.record(time.response(limit: 40, remaining: 39, reset: time.now + 20), ticket: tickets[0])
        // 39 less the 29 sent after it leaves 10: 8 more go, then the reserve of 2 holds.
        for _ in 0..<8 { try await governor.acquire() }
        #expect(time.sleeps.isEmpty)
        try await governor.acquire()
        #expect(time.sleeps.count == 1, "a ninth would have spent the reserve")
    }
}

@Suite struct ConcurrencyLimitTests {
    final class Distress: Sendable {
        let count = Mutex(0)
        func signal() { count.withLock { $0 += 1 } }
    }

    /// Runs one round: `limit` requests acquired, then all released.
    static func round(_ limit: ConcurrencyLimit) async {
        let width = limit.limit
        for _ in 0..<width { await limit.acquire() }
        for _ in 0..<width { limit.release() }
    }

    @Test func itStartsAtTheCapHalvesOnDistressAndGrowsBackByOne() async {
        let distress = Distress()
        let limit = ConcurrencyLimit(cap: 64) { distress.count.withLock { $0 } }
        #expect(limit.limit == 64)
        await Self.round(limit)
        #expect(limit.limit == 64, "never above the cap")
        // A retry seen at the next answer halves it, once: the rest of the round met the same.
        for _ in 0..<64 { await limit.acquire() }
        distress.signal()
        for _ in 0..<64 { limit.release() }
        #expect(limit.limit == 32)
        #expect(limit.backoffs == 1)
        await Self.round(limit)
        #expect(limit.limit == 33, "after distress it grows by one a round")
        // Distress again, once the requests sent before the halving are answered: halved again.
        for _ in 0..<33 { await limit.acquire() }
        distress.signal()
        for _ in 0..<33 { limit.release() }
        #expect(limit.limit == 16)
        #expect(limit.backoffs == 2)
        #expect(limit.peak == 64)
    }

    @Test func aWaiterGetsTheSlotOfTheFirstRelease() async throws {
        let limit = ConcurrencyLimit(cap: 1) { 0 }
        await limit.acquire()
        let acquired = Shared(0)
        let waiter = Task {
            await limit.acquire()
            acquired.withLock { $0 += 1 }
        }
        try await Task.sleep(for: .milliseconds(20))
        #expect(acquired.withLock { $0 } == 0, "a second caller waits while the only slot is held")
        limit.release()
        try await TurnQueueTests.until { acquired.withLock { $0 } == 1 }
        await waiter.value
        // The slot passed to the waiter: a third caller waits until the waiter releases it.
        let third = Task {
            await limit.acquire()
            acquired.withLock { $0 += 1 }
        }
        try await Task.sleep(for: .milliseconds(20))
        #expect(acquired.withLock { $0 } == 1, "the waiter holds the slot")
        limit.release()
        try await TurnQueueTests.until { acquired.withLock { $0 } == 2 }
        await third.value
        limit.release()
    }
}
