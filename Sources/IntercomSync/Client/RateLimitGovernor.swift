import Foundation

/// Paces every request to one workspace by Intercom's rate-limit headers (`X-RateLimit-Limit`, `-Remaining`, `-Reset`, per 10-second window).
///
/// Each response's `X-RateLimit-Limit / -Remaining / -Reset` updates the budget of the current
/// window. A request asks `acquire()` first: while the window's remaining budget (less the
/// requests already let through since the last answer) is down to `reserve`, it waits for the
/// reset, so the budget is spent without a 429. A 429 makes every caller wait for the reset.
/// Share one governor between everything that talks to one workspace in a process.
package actor RateLimitGovernor {
    /// What the governor knows of the current window.
    package struct Budget: Sendable, Equatable {
        package var limit: Int
        package var remaining: Int
        /// Unix seconds at which the window refills.
        package var reset: Double

        package init(limit: Int, remaining: Int, reset: Double) {
            self.limit = limit
            self.remaining = remaining
            self.reset = reset
        }
    }

    /// Requests kept back from the budget, for answers still in flight when it is read.
    package let reserve: Int
    /// The share of each window's limit this process may spend (0 < share ≤ 1): the rest is
    /// left to a flush, another sync, or the workspace's other apps.
    package let share: Double
    /// The longest wait for a reset. Intercom's windows last 10 seconds; a reset further away
    /// means the two clocks disagree, and waiting longer would only stall.
    package let maximumWait: Double
    private let now: @Sendable () -> Double
    private let sleep: @Sendable (Double) async throws -> Void

    package private(set) var budget: Budget?
    /// The budget as an answer confirmed it, for others to learn from (`SharedRateBudget`):
    /// nil while it is a guess made at a reset, or before any answer.
    package var confirmedBudget: Budget? { budgetAssumed ? nil : budget }
    /// The budget is a guess made at a reset, not yet confirmed by an answer.
    private var budgetAssumed = false
    /// Requests let through so far (each gets this count as its ticket), and the ticket of the
    /// request whose answer `budget` comes from: the requests let through after that one are
    /// not in its `remaining` yet. With many requests in flight, the answer that opens a window
    /// arrives after dozens more have gone out; counting from its ticket keeps them in the sum.
    private var issued = 0
    private var budgetTicket = 0
    private var issuedSinceUpdate: Int { issued - budgetTicket }
    /// After a 429 nothing goes out before this time.
    private var blockedUntil: Double = 0

    package init(
        reserve: Int = 4, maximumWait: Double = 10, share: Double = 1,
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
        sleep: @escaping @Sendable (Double) async throws -> Void = { try await Task.sleep(for: .seconds($0)) }
    ) {
        self.reserve = reserve
        self.share = min(1, max(0.01, share))
        self.maximumWait = maximumWait
        self.now = now
        self.sleep = sleep
    }

    /// Waits until a request may be sent, and counts it against the budget. Returns the
    /// request's ticket, for `record(_:ticket:)`.
    @discardableResult
    package func acquire() async throws -> Int {
        while true {
            let time = now()
            if blockedUntil > time {
                try await pause(blockedUntil - time)
                continue
            }
            if let current = budget, time >= current.reset {
                assumeRefilled(current)
            }
            if let current = budget, current.remaining - issuedSinceUpdate - leftToOthers(current) <= reserve(of: current) {
                try await pause(current.reset - time + jitter())
                if budget == current {
                    assumeRefilled(current)
                }
                continue
            }
            issued += 1
            return issued
        }
    }

    /// Reads the rate-limit headers of an answer to the request that `ticket` let through (nil
    /// when unknown: then the answer is taken for the newest request's).
    package func record(_ response: HTTPResponse, ticket: Int? = nil) {
        guard let limit = response.header("x-ratelimit-limit").flatMap(Int.init),
            let remaining = response.header("x-ratelimit-remaining").flatMap(Int.init),
            let reset = response.header("x-ratelimit-reset").flatMap(Double.init)
        else { return }
        let localReset = min(reset, now() + maximumWait)
        if let current = budget, !budgetAssumed {
            if localReset < current.reset - 0.5 {
                return  // A late answer from an older window.
            }
            if abs(localReset - current.reset) < 0.5 {
                // Answers of one window arrive out of order: the lowest remaining is the newest.
                guard remaining < current.remaining else { return }
                // Without a ticket, the drop stands for requests let through since the update.
                budgetTicket = ticket ?? min(issued, budgetTicket + (current.remaining - remaining))
                budget = Budget(limit: limit, remaining: remaining, reset: current.reset)
                return
            }
        }
        budget = Budget(limit: limit, remaining: remaining, reset: localReset)
        budgetAssumed = false
        budgetTicket = min(issued, ticket ?? issued)
    }

    /// Takes what other processes spending the same app's limit learnt of the window (a budget
    /// kept in common, `SharedRateBudget`): a lower remaining for the window it knows, or a
    /// later window. The requests it let through since its own last answer (or the reset it
    /// assumed) stay counted: the others may not have seen them yet.
    package func adopt(_ shared: Budget) {
        let time = now()
        guard shared.reset > time else { return }
        let reset = min(shared.reset, time + maximumWait)
        if let current = budget, !budgetAssumed {
            if reset < current.reset - 0.5 { return }
            if abs(reset - current.reset) < 0.5 {
                guard shared.remaining < current.remaining else { return }
                budget = Budget(limit: shared.limit, remaining: shared.remaining, reset: current.reset)
                return
            }
        }
        budget = Budget(limit: shared.limit, remaining: shared.remaining, reset: reset)
        budgetAssumed = false
    }

    /// The part of the window's limit kept for others (`share`).
    private func leftToOthers(_ budget: Budget) -> Int {
        budget.limit - Int((Double(budget.limit) * share).rounded(.down))
    }

    /// `reserve`, but never more than a tenth of a small window's budget (and at least one).
    private func reserve(of budget: Budget) -> Int {
        max(1, min(reserve, budget.limit / 10))
    }

    /// The window has refilled and no answer has said so yet: assume a full budget until one does.
    private func assumeRefilled(_ current: Budget) {
        budget = Budget(limit: current.limit, remaining: current.limit, reset: now() + maximumWait)
        budgetAssumed = true
        budgetTicket = issued
    }

    /// A 429: every caller waits until the window resets (or, without headers, for `fallback`).
    package func rateLimited(_ response: HTTPResponse, fallback: Double) {
        let time = now()
        if let reset = response.header("x-ratelimit-reset").flatMap(Double.init), reset > time {
            blockedUntil = max(blockedUntil, min(reset, time + maximumWait) + jitter())
        } else {
            blockedUntil = max(blockedUntil, time + fallback)
        }
        if var current = budget {
            current.remaining = 0
            budget = current
        }
    }

    private func pause(_ seconds: Double) async throws {
        let seconds = min(max(seconds, 0.001), maximumWait + 1)
        try await sleep(seconds)
    }

    /// Up to 100 ms, so that clients sharing a workspace do not all wake at the same instant.
    private func jitter() -> Double {
        Double.random(in: 0.005...0.1)
    }
}

/// A rate budget that the processes spending one app's limit keep in common (a team's store,
/// for its flush workers): each reports what Intercom's answers confirmed of the current
/// window and learns what the others' confirmed, so none spends what another already has.
package protocol SharedRateBudget: Sendable {
    /// Records `budget` (nil before any answer) and answers the common one: the lowest
    /// remaining reported for the newest window, nil when none is known.
    func exchange(_ budget: RateLimitGovernor.Budget?) async throws -> RateLimitGovernor.Budget?
}
