import Foundation
import GRDB
import Synchronization

/// Tells an observer that the mirror may have changed: at once for a commit of this process's
/// writer (GRDB's `DatabaseRegionObservation`), and within `pollInterval` for a commit of any
/// other connection, another process's included (SQLite's `PRAGMA data_version`, which changes
/// for a connection whenever another one commits).
///
/// Signals coalesce: an observer busy re-reading finds at most one more waiting.
final class MirrorChanges: Sendable {
    let signals: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation
    private let observation: Mutex<AnyDatabaseCancellable?>
    private let poller: Task<Void, Never>?

    init(mirror: ContactMirror, pollInterval: Duration) {
        let (signals, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.signals = signals
        self.continuation = continuation
        continuation.yield()
        let region = DatabaseRegionObservation(tracking: .fullDatabase)
        let cancellable = region.start(in: mirror.writer.base, onError: { _ in continuation.yield() }) { _ in
            continuation.yield()
        }
        observation = Mutex(cancellable)
        guard let path = mirror.path else {
            poller = nil
            return
        }
        poller = Task.detached(priority: .utility) {
            var configuration = Configuration()
            configuration.readonly = true
            configuration.busyMode = .timeout(1)
            guard let watcher = try? DatabaseQueue(path: path, configuration: configuration) else { return }
            func version() -> Int? {
                try? watcher.inDatabase { db in try Int.fetchOne(db, sql: "PRAGMA data_version") }
            }
            var last = version()
            while !Task.isCancelled {
                try? await Task.sleep(for: pollInterval)
                let current = version()
                if current != last {
                    last = current
                    continuation.yield()
                }
            }
            try? watcher.close()
        }
    }

    func stop() {
        poller?.cancel()
        observation.withLock {
            $0?.cancel()
            $0 = nil
        }
        continuation.finish()
    }
}
