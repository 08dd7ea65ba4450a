import Synchronization

/// How many requests the workers of a walk keep in flight: the cap (`--concurrency`) at first;
/// once Intercom shows distress (a 429, a 5xx, a timeout, a dropped connection: any request the
/// client had to retry) half as many, and then one more each round trip, back up to the cap. The
/// rate limit is the `RateLimitGovernor`'s to keep; this keeps a struggling server, or a slow
/// link, from being met with the whole cap again and again.
///
/// It starts at the cap rather than low: the governor already keeps the budget, and at
/// Intercom's second a round trip, doubling from 8 cost a first sync of 30,000 contacts 1.5 s of
/// its 9 (measured), for nothing a server in good health needs.
final class ConcurrencyLimit: Sendable {
    private struct State {
        var limit: Int
        var inFlight = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
        /// Answers since the limit last changed: a round is `limit` of them.
        var answers = 0
        /// The client's retries when last looked at.
        var retries: Int
        var backoffs = 0
        var peak: Int
    }

    let cap: Int
    /// A count that grows with every sign of distress: the client's retries.
    private let distress: @Sendable () -> Int
    private let state: Mutex<State>

    convenience init(cap: Int, client: IntercomClient) {
        self.init(cap: cap) { client.counters.retries }
    }

    init(cap: Int, distress: @escaping @Sendable () -> Int) {
        self.cap = max(1, cap)
        self.distress = distress
        state = Mutex(State(limit: self.cap, retries: distress(), peak: self.cap))
    }

    /// Waits for a slot.
    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state in
                guard state.inFlight < state.limit else {
                    state.waiters.append(continuation)
                    return false
                }
                state.inFlight += 1
                return true
            }
            if now { continuation.resume() }
        }
    }

    /// Gives the slot back once its request is answered (or given up), and moves the limit.
    func release() {
        let retries = distress()
        let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.inFlight -= 1
            state.answers += 1
            if retries > state.retries {
                state.retries = retries
                // At most once a round: the requests already in flight meet the same distress.
                if state.answers >= 0 {
                    state.limit = max(1, state.limit / 2)
                    // The answers to requests already out do not count towards growing again.
                    state.answers = -state.inFlight
                    state.backoffs += 1
                }
            } else if state.answers >= state.limit {
                state.limit = min(cap, state.limit + 1)
                state.answers = 0
                state.peak = max(state.peak, state.limit)
            }
            var ready: [CheckedContinuation<Void, Never>] = []
            while state.inFlight < state.limit, !state.waiters.isEmpty {
                state.inFlight += 1
                ready.append(state.waiters.removeFirst())
            }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    /// Runs `work` in a slot.
    func run<T: Sendable>(_ work: () async throws -> T) async rethrows -> T {
        await acquire()
        defer { release() }
        return try await work()
    }

    var limit: Int { state.withLock { $0.limit } }
    /// How many times it halved, and the highest it reached.
    var backoffs: Int { state.withLock { $0.backoffs } }
    var peak: Int { state.withLock { $0.peak } }
}
