import Foundation
import Synchronization

/// Sends what the outbox holds, as the Guarantees article promises (creates happen once, a pushed contact takes its Intercom
/// id, a message to a pending contact waits, a message is sent at most once, retries are bounded
/// and told apart, one flush at a time):
///
/// - creates first (imported contacts get their entries on the way, `queueImportedCreates`),
///   then taggings (one at a time), then messages, each in queue order, a few at a time through the client's shared rate-limit
///   governor;
/// - every entry is committed `in_flight` before its request goes out, and its outcome is
///   committed when the answer comes: `sent` with the remote id, `failed` on a permanent error,
///   back to `pending` on a transient one, `unknown` when a message may have gone out;
/// - a create is safe to repeat (a 409 "already exists with id=…" adopts that contact), so it is
///   retried on any transient failure; a message is retried only when Intercom certainly did not
///   act on it (unreachable, or 429);
/// - a message to a contact created locally waits until that create is pushed, then goes to the
///   Intercom id;
/// - a 401 stops the flush: nothing more is sent until the connection is set up again;
/// - so does Intercom out of reach (a request that found the host unreachable after its
///   retries, or `silenceLimit` requests in a row that got no answer at all): what is not sent
///   stays queued, and the summary says why (`unreachable`).
///
///     let summary = try await OutboxFlush(mirror: mirror, client: client).run()
package final class OutboxFlush: Sendable {
    /// The store that holds the outbox: the local mirror, or any other `OutboxStore`.
    let mirror: any OutboxStore
    package let client: IntercomClient
    /// Requests in flight at once.
    package let concurrency: Int
    /// Entries read from the queue at once: a queue of a million imported creates is read a page
    /// at a time, never held whole.
    let pageSize: Int
    let now: @Sendable () -> Int

    /// For this long after its contact's create, a message's 404 means "not messageable yet"
    /// (Intercom's documented delay) and the message stays queued instead of failing.
    static let newContactGrace = 600
    /// When a deferred entry is worth trying again, at the earliest.
    static let deferral = 60
    /// Requests in a row, after their retries, that got no answer (timeouts, broken
    /// connections) before the flush takes Intercom for unreachable and stops.
    static let silenceLimit = 3

    package convenience init(
        mirror: ContactMirror, client: IntercomClient, concurrency: Int = 4, pageSize: Int = 2_000,
        now: @escaping @Sendable () -> Int = { Int(Date().timeIntervalSince1970) }
    ) {
        self.init(store: mirror, client: client, concurrency: concurrency, pageSize: pageSize, now: now)
    }

    package init(
        store mirror: any OutboxStore, client: IntercomClient, concurrency: Int = 4, pageSize: Int = 2_000,
        now: @escaping @Sendable () -> Int = { Int(Date().timeIntervalSince1970) }
    ) {
        self.pageSize = max(1, pageSize)
        self.mirror = mirror
        self.client = client
        self.concurrency = max(1, concurrency)
        self.now = now
    }

    /// Flushes the outbox, holding the mirror's lock. Throws only when the flush cannot go on
    /// (the lock is held elsewhere, the mirror cannot be written, the server is not the
    /// mirror's workspace and `rebind` is false: `WorkspaceBinding`); Intercom's refusals end up
    /// in the entries and the summary.
    package func run(
        rebind: Bool = false, lockWait: Double = 0, progress: (@Sendable (FlushProgress) -> Void)? = nil
    ) async throws -> FlushSummary {
        let lock = try await mirror.lockForFlush(purpose: "intercom-sync outbox flush", waiting: lockWait)
        defer { withExtendedLifetime(lock) {} }
        let started = Date()
        let before = client.counters
        let (interrupted, queued) = try await mirror.beginFlush(now: now())
        let run = FlushRun(total: queued, progress: progress)
        run.update {
            $0.queued = queued
            $0.interrupted = interrupted
        }
        do {
            // Creates and messages go only to the workspace the mirror mirrors.
            if queued > 0 { _ = try await mirror.bind(to: client.workspaceIdentity(), rebind: rebind) }
        } catch let error as IntercomError where error.kind == .authentication || error.isNoAnswer {
            // Stopped before any entry was touched.
            if error.kind == .authentication { run.stop(error) } else { run.stopUnreachable(error) }
        }
        try await forEachPendingPage(of: .createContact, in: run) { page in
            try await self.forEach(page, in: run) { entry in try await self.push(entry, in: run) }
        }
        // An unarchive goes before the edits, taggings, messages and notes staged after it: an
        // archived contact takes none of them.
        try await forEachPendingPage(of: .unarchiveContact, in: run) { page in
            try await self.forEach(page, width: 1, in: run) { entry in try await self.remove(entry, in: run) }
        }
        try await forEachPendingPage(of: .updateContact, in: run) { page in
            try await self.forEach(page, in: run) { entry in try await self.sendUpdate(entry, in: run) }
        }
        try await forEachPendingPage(of: [.tagContact, .untagContact], in: run) { page in
            try await self.forEach(page, width: 1, in: run) { entry in try await self.applyTagging(entry, in: run) }
        }
        var sender: Result<String, IntercomError>?
        try await forEachPendingPage(of: .sendMessage, in: run) { page in
            if sender == nil { sender = try await self.sender(for: page, in: run) }
            try await self.forEach(page, in: run) { [sender] entry in
                try await self.send(entry, sender: sender, in: run)
            }
        }
        try await forEachPendingPage(of: .addNote, in: run) { page in
            try await self.forEach(page, in: run) { entry in try await self.addNote(entry, in: run) }
        }
        // Last, one at a time in queue order: whatever was staged for a contact before its
        // archive or delete goes first.
        try await forEachPendingPage(of: [.archiveContact, .deleteContact], in: run) { page in
            try await self.forEach(page, width: 1, in: run) { entry in try await self.remove(entry, in: run) }
        }
        run.finish()
        var summary = run.summary
        let after = client.counters
        summary.requests = after.requests - before.requests
        summary.rateLimited = after.rateLimited - before.rateLimited
        summary.retries = after.retries - before.retries
        summary.duration = Date().timeIntervalSince(started)
        let left = try await mirror.outboxLeft()
        summary.failedInOutbox = left.failed
        summary.unknownInOutbox = left.unknown
        summary.conflictInOutbox = left.conflict
        summary.pendingInOutbox = left.pending
        return summary
    }

    /// Hands `body` the pending entries of `kind` in queue order, a page at a time, until the
    /// queue ends or the run stops. Before each page of creates, the create entries of up to a
    /// page of imported contacts are written (`queueImportedCreates`). An entry that goes back
    /// to pending during the run (a transient failure) waits for the next flush, as it lies
    /// behind the page being read.
    private func forEachPendingPage(
        of kind: OutboxEntry.Kind, in run: FlushRun, _ body: ([OutboxEntry]) async throws -> Void
    ) async throws {
        try await forEachPendingPage(of: [kind], in: run, body)
    }

    private func forEachPendingPage(
        of kinds: [OutboxEntry.Kind], in run: FlushRun, _ body: ([OutboxEntry]) async throws -> Void
    ) async throws {
        var after: Int64 = 0
        var importsWaiting = kinds.contains(.createContact)
        while !run.isStopped {
            if importsWaiting {
                // Imported contacts get their entries a page ahead of their pushes.
                importsWaiting = try await mirror.queueImportedCreates(limit: pageSize, now: now())
            }
            let page = try await mirror.pendingEntries(of: kinds, after: after, limit: pageSize)
            guard let last = page.last else {
                if importsWaiting { continue }  // A range whose contacts all had entries already.
                return
            }
            after = last.seq
            try await body(page)
        }
    }

    /// Runs `work` over `entries` in order, at most `concurrency` at a time; starts nothing
    /// new once the run is stopped.
    private func forEach(
        _ entries: [OutboxEntry], width: Int? = nil, in run: FlushRun,
        _ work: @escaping @Sendable (OutboxEntry) async throws -> Void
    ) async throws {
        let width = width ?? concurrency
        try await withThrowingTaskGroup(of: Void.self) { group in
            var pending = entries.makeIterator()
            var running = 0
            while true {
                while running < width, !run.isStopped, let entry = pending.next() {
                    group.addTask { try await work(entry) }
                    running += 1
                }
                guard running > 0, try await group.next() != nil else { break }
                running -= 1
            }
        }
    }

    /// Commits an entry `in_flight` before its request; false when it is no longer pending.
    func markInFlight(_ entry: OutboxEntry) async throws -> Bool {
        try await mirror.markInFlight(seq: entry.seq, now: now())
    }

    func settle(
        _ entry: OutboxEntry, _ state: OutboxState, error: OutboxEntry.Failure? = nil, remoteID: String? = nil,
        retryAfter delay: Int? = nil
    ) async throws {
        let time = now()
        try await mirror.settle(
            seq: entry.seq, state: state, error: error, remoteID: remoteID, nextAttemptAt: delay.map { time + $0 }, now: time)
    }

    /// Settles an entry after an error that is not a message's ambiguity: a refused token stops
    /// the flush, a transient failure defers the entry, anything else fails it.
    func settleFailure(_ entry: OutboxEntry, _ error: IntercomError, in run: FlushRun) async throws {
        switch error.kind {
        case .authentication:
            try await settle(entry, .pending, error: OutboxEntry.Failure(error))
            run.stop(error)
            run.update { $0.deferred += 1 }
        case .transient:
            try await settle(entry, .pending, error: OutboxEntry.Failure(error), retryAfter: Self.deferral)
            run.update { $0.deferred += 1 }
            run.noteFailure(error)
        case .permanent:
            try await settle(entry, .failed, error: OutboxEntry.Failure(error))
            run.update { $0.failed += 1 }
        default:
            // A kind this flush does not know: failed, as a permanent error is, never retried blindly.
            try await settle(entry, .failed, error: OutboxEntry.Failure(error))
            run.update { $0.failed += 1 }
        }
    }
}

/// One flush's shared state: its summary, its progress, and whether it was stopped.
final class FlushRun: Sendable {
    private struct State {
        var summary = FlushSummary()
        /// Entries that had an answer (sent or failed), when last counted.
        var answered = 0
        /// Failures in a row that got no answer at all, and the last of them.
        var silences = 0
        var lastSilence: IntercomError?
    }

    private let state = Mutex(State())
    let total: Int
    private let progress: (@Sendable (FlushProgress) -> Void)?

    init(total: Int, progress: (@Sendable (FlushProgress) -> Void)?) {
        self.total = total
        self.progress = progress
    }

    var summary: FlushSummary { state.withLock { $0.summary } }
    var isStopped: Bool { state.withLock { $0.summary.stoppedBy != nil || $0.summary.unreachable != nil } }

    func update(_ change: (inout FlushSummary) -> Void) {
        state.withLock { change(&$0.summary) }
    }

    func stop(_ error: IntercomError) {
        state.withLock { $0.summary.stoppedBy = $0.summary.stoppedBy ?? error }
    }

    /// Stops the run: Intercom could not be reached.
    func stopUnreachable(_ error: IntercomError) {
        state.withLock { $0.summary.unreachable = $0.summary.unreachable ?? error }
    }

    /// Counts a request that failed for good: one that found Intercom unreachable stops the
    /// run, and so does the `OutboxFlush.silenceLimit`th in a row that got no answer.
    func noteFailure(_ error: IntercomError) {
        state.withLock { state in
            guard error.isNoAnswer else {
                state.silences = 0
                return
            }
            state.silences += 1
            state.lastSilence = error
            if error.isOffline || state.silences >= OutboxFlush.silenceLimit {
                state.summary.unreachable = state.summary.unreachable ?? error
            }
        }
    }

    /// At the end of a run: one that never had an answer from Intercom, and whose requests
    /// went unanswered, did not reach it, however few they were.
    func finish() {
        state.withLock { state in
            if state.answered == 0, state.silences > 0, let error = state.lastSilence {
                state.summary.unreachable = state.summary.unreachable ?? error
            }
        }
    }

    /// After an entry's turn: reports how many entries have an outcome (sent, failed or
    /// unknown), and counts an answer received as the end of any silence.
    func advance() {
        let done = state.withLock {
            let summary = $0.summary
            // Sent and failed entries had an answer from Intercom.
            if summary.sent + summary.failed > $0.answered { $0.silences = 0 }
            $0.answered = summary.sent + summary.failed
            return summary.sent + summary.failed + summary.unknown
        }
        progress?(FlushProgress(done: done, total: total))
    }
}
