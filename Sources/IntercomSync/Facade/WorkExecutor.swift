import Dispatch
import Foundation

/// Threads of the engine's own for long synchronous work (a bulk upsert, an index build, an
/// import's load, a query over a large mirror), so that it never occupies the cooperative
/// thread pool that an app's tasks share.
///
/// As a `TaskExecutor` preference it carries whole async operations (a sync, a flush): their
/// code and their child tasks run here, and so does every blocking call they make.
final class WorkExecutor: TaskExecutor, @unchecked Sendable {
    static let shared = WorkExecutor()

    private let queue = DispatchQueue(label: "intercom-sync.work", qos: .utility, attributes: .concurrent)
    private init() {}

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }

    /// Runs synchronous `work` on these threads and hands back its result.
    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try work() }) }
        }
    }

    /// Runs async `operation` with these threads as its executor.
    func run<T: Sendable>(_ operation: @Sendable () async throws -> T) async throws -> T {
        try await withTaskExecutorPreference(self) { try await operation() }
    }
}
