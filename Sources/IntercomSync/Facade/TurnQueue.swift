import Synchronization

/// Lets one piece of work at a time run, in the order they asked, without holding a thread
/// while waiting: how a sync, a flush and an import on one ``IntercomMirror`` take turns.
final class TurnQueue: Sendable {
    private struct State {
        var busy = false
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    /// Runs `body` once every earlier caller's body has returned.
    func run<T>(_ body: () async throws -> T) async throws -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        let acquired = state.withLock { state in
            if state.busy { return false }
            state.busy = true
            return true
        }
        guard !acquired else { return }
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state in
                if state.busy {
                    state.waiting.append(continuation)
                    return false
                }
                state.busy = true
                return true
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// How many callers are waiting for their turn.
    var waiting: Int { state.withLock { $0.waiting.count } }

    private func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiting.isEmpty {
                state.busy = false
                return nil
            }
            // The turn passes straight to the next in line: `busy` stays set.
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
