import PostgresNIO
import Synchronization

/// The connection closed while an operation ran on it: PostgreSQL stopped, restarted or cut it.
struct ConnectionClosed: Error, CustomStringConvertible {
    var description: String { "the connection to PostgreSQL closed" }
}

/// A connection of the store's, watched for its close: operations run on it through
/// `whileOpen`, which ends as soon as the connection closes.
///
/// A query written to a connection whose channel has just been torn down waits for good: the
/// write fails with nothing to tell, and the query's answer never comes. Under a restarted
/// PostgreSQL that happens to a `ROLLBACK` after a lost statement as much as to a statement on
/// a connection that died while idle. One callback on the connection's close, registered
/// when it opens, ends whatever operations wait on it then; an operation adds nothing that
/// outlives it, however long the connection serves.
final class WatchedConnection: Sendable {
    let connection: PostgresConnection
    private let state = Mutex(State())

    private struct State {
        var closed = false
        var waiting: [Int: @Sendable () -> Void] = [:]
        var next = 0
    }

    init(_ connection: PostgresConnection) {
        self.connection = connection
        connection.closeFuture.whenComplete { [weak self] _ in self?.closed() }
    }

    private func closed() {
        let waiting = state.withLock { state in
            state.closed = true
            defer { state.waiting = [:] }
            return Array(state.waiting.values)
        }
        for end in waiting { end() }
    }

    var isClosed: Bool { connection.isClosed }

    func close() async throws {
        try await connection.close()
    }

    /// Runs `body` on the connection, and throws `ConnectionClosed` as soon as the connection
    /// closes while it runs, whatever `body` is waiting for. Such a `body` is left waiting on a
    /// dead connection, where it can change nothing, and the caller goes on. Cancelling the
    /// caller cancels `body`.
    func whileOpen<T: Sendable>(_ body: @Sendable @escaping (PostgresConnection) async throws -> T) async throws -> T {
        let race = Race<T>()
        let connection = self.connection
        let ticket: Int? = state.withLock { state in
            guard !state.closed else { return nil }
            defer { state.next += 1 }
            state.waiting[state.next] = { race.end(.failure(ConnectionClosed())) }
            return state.next
        }
        guard let ticket else { throw ConnectionClosed() }
        defer { _ = state.withLock { $0.waiting.removeValue(forKey: ticket) } }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                race.begin(continuation)
                let work = Task {
                    do {
                        race.end(.success(try await body(connection)))
                    } catch {
                        race.end(.failure(error))
                    }
                }
                race.started(work)
            }
        } onCancel: {
            race.cancel()
        }
    }
}

/// Who ends a `whileOpen` first, the operation or the connection's close (either may come
/// before the caller waits); and the operation's task, for a cancellation that may come before
/// or after it starts.
private final class Race<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var outcome: Result<T, any Error>?
        var resumed = false
        var work: Task<Void, Never>?
        var cancelled = false
    }

    private let state = Mutex(State())

    func begin(_ continuation: CheckedContinuation<T, any Error>) {
        let outcome: Result<T, any Error>? = state.withLock { state in
            guard let outcome = state.outcome else {
                state.continuation = continuation
                return nil
            }
            state.resumed = true
            return outcome
        }
        if let outcome { continuation.resume(with: outcome) }
    }

    func end(_ result: Result<T, any Error>) {
        let continuation: CheckedContinuation<T, any Error>? = state.withLock { state in
            guard !state.resumed, state.outcome == nil else { return nil }
            state.outcome = result
            guard let continuation = state.continuation else { return nil }
            state.resumed = true
            state.continuation = nil
            return continuation
        }
        continuation?.resume(with: result)
    }

    func started(_ work: Task<Void, Never>) {
        let cancelled = state.withLock { state in
            state.work = work
            return state.cancelled
        }
        if cancelled { work.cancel() }
    }

    func cancel() {
        let work = state.withLock { state in
            state.cancelled = true
            return state.work
        }
        work?.cancel()
    }
}
