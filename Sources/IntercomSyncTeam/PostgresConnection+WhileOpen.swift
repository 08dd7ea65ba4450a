import PostgresNIO
import Synchronization

/// The connection closed while an operation ran on it: PostgreSQL stopped, restarted or cut it.
struct ConnectionClosed: Error, CustomStringConvertible {
    var description: String { "the connection to PostgreSQL closed" }
}

extension PostgresConnection {
    /// Runs `body` on this connection, and throws `ConnectionClosed` as soon as the connection
    /// closes while it runs, whatever `body` is waiting for.
    ///
    /// A query written to a connection whose channel has just been torn down waits for good:
    /// the write fails with nothing to tell, and the query's answer never comes. Under a
    /// restarted PostgreSQL that happens to a `ROLLBACK` after a lost statement as much as to a
    /// statement on a connection that died while idle. Such a `body` is left waiting on a dead
    /// connection, where it can change nothing, and the caller goes on. Cancelling the caller
    /// cancels `body`.
    func whileOpen<T: Sendable>(_ body: @Sendable @escaping (PostgresConnection) async throws -> T) async throws -> T {
        let race = Race<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                race.begin(continuation)
                let work = Task {
                    do {
                        race.end(.success(try await body(self)))
                    } catch {
                        race.end(.failure(error))
                    }
                }
                race.started(work)
                self.closeFuture.whenComplete { _ in race.end(.failure(ConnectionClosed())) }
            }
        } onCancel: {
            race.cancel()
        }
    }
}

/// Who ends a `whileOpen` first, the operation or the connection's close; and the operation's
/// task, for a cancellation that may come before or after it starts.
private final class Race<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var work: Task<Void, Never>?
        var cancelled = false
    }

    private let state = Mutex(State())

    func begin(_ continuation: CheckedContinuation<T, any Error>) {
        state.withLock { $0.continuation = continuation }
    }

    func started(_ work: Task<Void, Never>) {
        let cancelled = state.withLock { state in
            state.work = work
            return state.cancelled
        }
        if cancelled { work.cancel() }
    }

    func end(_ result: Result<T, any Error>) {
        let continuation = state.withLock { state in
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume(with: result)
    }

    func cancel() {
        let work = state.withLock { state in
            state.cancelled = true
            return state.work
        }
        work?.cancel()
    }
}
