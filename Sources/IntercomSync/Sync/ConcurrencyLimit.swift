import Synchronization

/// How many requests the workers of a walk keep in flight: it starts low and doubles every round
/// trip up to the cap (`--concurrency`), then, once Intercom shows distress (a 429, a 5xx, a
/// timeout, a dropped connection: any request the client had to retry), halves, and from then on
/// grows by one a round trip. The rate limit is the `RateLimitGovernor`'s to keep; this keeps a
/// struggling server, or a slow link, from being met with the whole cap at once.
final class ConcurrencyLimit: Sendable {
    private struct State {
        var limit: Int
        var inFlight = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
        /// Answers since the limit last changed: a round is `limit` of them.
        var answers = 0
        /// Doubling each round until the first sign of distress.
        var slowStart = true
        /// The client's retries when last looked at.
        var retries: Int
        var backoffs = 0
        var peak: Int
    }

    let cap: Int
    /// A count that grows with every sign of distress: the client's retries.
    private let distress: @Sendable () -> Int
    private let state: Mutex<State>

    static let startingLimit = 8

    convenience init(cap: Int, client: IntercomClient) {
        self.init(cap: cap) { client.counters.retries }
    }

    init(cap: Int, distress: @escaping @Sendable () -> Int) {
        self.cap = max(1, cap)
        self.distress = distress
        let start = min(self.cap, Self.startingLimit)
        state = Mutex(State(limit: start, retries: distress(), peak: start))
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
                if state.answers >= state.limit || state.slowStart {
                    state.limit = max(1, state.limit / 2)
                    state.slowStart = false
                    // The answers to requests already out do not count towards growing again.
                    state.answers = -state.inFlight
                    state.backoffs += 1
                }
            } else if state.answers >= state.limit {
                state.limit = min(cap, state.slowStart ? 2 * state.limit : state.limit + 1)
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
