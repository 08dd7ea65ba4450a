import Foundation
import IntercomSync
import Logging
import PostgresNIO
import Synchronization

/// A flush worker's side of the team outbox: the store a flush runs over when its entries are
/// the team's, so that the flush's logic (the order, creates once with 409 adoption, messages
/// and notes at most once, the three-way merge of edits) is the one a laptop runs.
///
/// Workers on any number of machines flush at once. Each entry is claimed as its turn comes
/// (`FOR UPDATE SKIP LOCKED`, so one worker takes it and the others pass it by) under a lease
/// and a fencing token, and settled with that token. While a flush runs, its leases are
/// renewed a third of the way through; a worker stopped for longer than a lease (killed,
/// frozen, cut off from PostgreSQL) loses its entries: a create, an edit, a tagging, an
/// archive or a delete goes back to the queue, and is safe to send again, while a message or a
/// note becomes `unknown`, as on a laptop, since it may have reached Intercom.
///
/// What an agent needs back from a flush is written beside the entry (`ClaimedEntry.outcome`)
/// and every contact Intercom answered with goes into the team's replica, in the transaction
/// that settles the entry.
///
/// Entry payloads, as agents push them:
/// - `create_contact`: the `POST /contacts` body; the entry's contact is the agent's local id.
/// - `update_contact`: `{"edits": [{"field": "phone", "base": …, "mine": …}]}`, a field named as
///   `outbox list` names it, `base` left out when the contact did not have the field.
/// - `tag_contact`, `untag_contact`: `{"name": …}`.
/// - `send_message`: the `POST /messages` body; `to` may give the recipient's `type`, and its id
///   is the entry's contact.
/// - `add_note`: the `POST /contacts/{id}/notes` body.
/// - `archive_contact`, `unarchive_contact`, `delete_contact`: `{}`.
package final class TeamOutbox: OutboxStore {
    package let store: TeamStore
    /// Who this worker is, in the store (`lease_owner`) and its messages.
    package let worker: String
    package let lease: Duration
    /// The fencing token of each entry this worker holds.
    private let held = Mutex<[Int64: Int64]>([:])
    /// The admin messages are sent as when they name none, once read.
    private let sender = Mutex<String?>(nil)

    /// Whether entries deferred after a transient failure wait until they are due: a worker
    /// that keeps running does not hammer what failed a moment ago, while a flush started by
    /// hand tries everything queued, as a laptop's does.
    package let honoursDeferral: Bool

    package init(store: TeamStore, worker: String, lease: Duration = .seconds(60), honoursDeferral: Bool = false) {
        self.store = store
        self.worker = worker
        self.lease = lease
        self.honoursDeferral = honoursDeferral
    }

    /// The time by which a deferred entry must be due to be taken now, if any.
    private func due(_ now: Int) -> Int? { honoursDeferral ? now : nil }

    /// Workers do not exclude one another: the token renews this worker's leases until the
    /// flush ends.
    package func lockForFlush(purpose: String, waiting seconds: Double) async throws -> any Sendable {
        LeaseKeeper(outbox: self)
    }

    package func beginFlush(now: Int) async throws -> (interrupted: [Int64], queued: Int) {
        ([], try await store.beginFlush(now: now))
    }

    package func pendingEntries(of kinds: [OutboxEntry.Kind], after seq: Int64, limit: Int) async throws
        -> [OutboxEntry]
    {
        try await store.readyEntries(of: kinds, after: seq, limit: limit, due: due(Int(Date().timeIntervalSince1970)))
    }

    /// Agents push the creates of their imported contacts themselves.
    package func queueImportedCreates(limit: Int, now: Int) async throws -> Bool { false }

    package func outboxLeft() async throws -> (failed: Int, unknown: Int, conflict: Int, pending: Int) {
        let counts = try await store.outboxCounts()
        return (counts[.failed] ?? 0, counts[.unknown] ?? 0, counts[.conflict] ?? 0, counts[.pending] ?? 0)
    }

    package func bind(to server: WorkspaceIdentity, rebind: Bool) async throws -> WorkspaceBinding {
        try await store.bindWorkspace(server.binding, rebind: rebind)
        return server.binding
    }

    // MARK: One entry

    /// Claims one entry for this worker, when it is still ready and no one else holds it.
    private func claim(_ seq: Int64, now: Int) async throws -> ClaimedEntry? {
        guard
            let claimed = try await store.claim(worker: worker, lease: lease, limit: 1, only: seq, due: due(now), now: now)
                .first
        else {
            return nil
        }
        held.withLock { $0[seq] = claimed.fence }
        return claimed
    }

    package func markInFlight(seq: Int64, now: Int) async throws -> Bool {
        try await claim(seq, now: now) != nil
    }

    package func settle(
        seq: Int64, state: OutboxState, error: OutboxEntry.Failure?, remoteID: String?, nextAttemptAt: Int?, now: Int
    ) async throws {
        try await settle(seq, state, error: error, remoteID: remoteID, nextAttemptAt: nextAttemptAt, now: now)
    }

    /// Settles an entry this worker holds. When its lease ran out and another worker took the
    /// entry, the outcome is that worker's to record, and this one's is only logged.
    private func settle(
        _ seq: Int64, _ state: OutboxState, error: OutboxEntry.Failure? = nil, remoteID: String? = nil,
        nextAttemptAt: Int? = nil, outcome: JSONValue? = nil, contact: String? = nil, tombstone: String? = nil, now: Int
    ) async throws {
        guard let fence = held.withLock({ $0.removeValue(forKey: seq) }) else {
            throw TeamStoreError(.fenced, "worker \(worker) settles entry #\(seq), which it does not hold")
        }
        do {
            try await store.settle(
                seq: seq, fence: fence, state: state, remoteID: remoteID, error: error, nextAttemptAt: nextAttemptAt,
                outcome: outcome?.jsonText, contact: contact, tombstone: tombstone, now: now)
        } catch let error as TeamStoreError where error.kind == .fenced {
            store.logger.warning("\(worker): \(error.description)")
        }
    }

    package func completeCreate(seq: Int64, localID: String, contactJSON: String, now: Int) async throws {
        let id = try JSONValue(jsonText: contactJSON)["id"]?.string
        try await settle(seq, .sent, remoteID: id, contact: contactJSON, now: now)
    }

    package func completeAdoptedCreate(
        seq: Int64, localID: String, contactJSON: String, disputed: [ContactMirror.FieldEdit], now: Int
    ) async throws {
        let id = try JSONValue(jsonText: contactJSON)["id"]?.string
        let outcome = JSONValue.object([
            "adopted": true,
            "disputed": .array(
                disputed.map { edit in
                    .object(["field": .string(edit.field.description), "mine": edit.mine, "theirs": edit.server ?? .null])
                }),
        ])
        try await settle(seq, .sent, remoteID: id, outcome: outcome, contact: contactJSON, now: now)
    }

    package func prepareUpdate(seq: Int64, now: Int) async throws -> UpdateReadiness {
        guard let claimed = try await claim(seq, now: now), let contactID = claimed.contactID else { return .gone }
        let edits: [ContactMirror.FieldEdit]
        do {
            edits = try Self.edits(in: claimed.entry)
        } catch let error as TeamStoreError {
            // An entry this worker cannot read (an agent's newer field, say) fails alone.
            try await settle(seq, .failed, error: Self.malformed(claimed.entry, error.detail), now: now)
            return .gone
        }
        guard !edits.isEmpty else {
            try await settle(
                seq, .superseded,
                error: OutboxEntry.Failure(
                    status: nil, code: "nothing_to_send", message: "the entry holds no edit", requestID: nil),
                now: now)
            return .nothing
        }
        return .edits(contactID: contactID, edits)
    }

    /// The edits an `update_contact` entry's payload holds.
    static func edits(in entry: OutboxEntry) throws -> [ContactMirror.FieldEdit] {
        guard case .array(let items)? = try JSONValue(jsonText: entry.payload)["edits"] else {
            throw TeamStoreError(.badEntry, "update entry #\(entry.seq) holds no \"edits\" list")
        }
        return try items.map { item in
            guard let name = item["field"]?.string, let field = ContactField(name: name), let mine = item["mine"] else {
                throw TeamStoreError(.badEntry, "update entry #\(entry.seq) has an edit without a known field or a value")
            }
            return ContactMirror.FieldEdit(field: field, base: item["base"], mine: mine, server: nil)
        }
    }

    package func completeUpdate(
        seq: Int64, contactID: String, edits: [ContactMirror.FieldEdit], outcomes: [ContactField: EditOutcome],
        contactJSON: String, now: Int
    ) async throws -> [ContactField] {
        var conflicts: [ContactField] = []
        var described: [JSONValue] = []
        for edit in edits {
            guard case .conflict(let theirs)? = outcomes[edit.field] else { continue }
            conflicts.append(edit.field)
            described.append(
                .object([
                    "field": .string(edit.field.description), "base": edit.base ?? .null, "mine": edit.mine,
                    "theirs": theirs ?? .null,
                ]))
        }
        try await settle(
            seq, conflicts.isEmpty ? .sent : .conflict, remoteID: contactID,
            outcome: conflicts.isEmpty ? nil : .object(["conflicts": .array(described)]), contact: contactJSON, now: now)
        return conflicts
    }

    package func failUpdateOfGoneContact(seq: Int64, contactID: String, failure: OutboxEntry.Failure, now: Int)
        async throws
    {
        try await settle(seq, .failed, error: failure, tombstone: contactID, now: now)
    }

    package func prepareTagging(seq: Int64, now: Int) async throws -> EntryReadiness {
        guard let claimed = try await claim(seq, now: now), let contactID = claimed.contactID else { return .gone }
        guard let name = (try? JSONValue(jsonText: claimed.entry.payload))?["name"]?.string else {
            try await settle(seq, .failed, error: Self.malformed(claimed.entry, "names no tag"), now: now)
            return .gone
        }
        return .tagging(contactID: contactID, name: name)
    }

    package func completeTagging(seq: Int64, tagID: String?, name: String, contactID: String, untag: Bool, now: Int)
        async throws
    {
        try await settle(seq, .sent, remoteID: tagID, now: now)
    }

    package func prepareMessage(seq: Int64, senderID: String?, now: Int, grace: Int) async throws -> EntryReadiness {
        guard let claimed = try await claim(seq, now: now), let contactID = claimed.contactID else { return .gone }
        guard case .object(var fields)? = try? JSONValue(jsonText: claimed.entry.payload) else {
            try await settle(seq, .failed, error: Self.malformed(claimed.entry, "is not a JSON object"), now: now)
            return .gone
        }
        if fields["from"] == nil, let senderID {
            fields["from"] = .object(["type": "admin", "id": .string(senderID)])
        }
        fields["to"] = .object(["type": .string(fields["to"]?["type"]?.string ?? "user"), "id": .string(contactID)])
        let newRecipient = claimed.awaitedCreateSentAt.map { $0 >= now - grace } ?? false
        return .message(body: JSONValue.object(fields).jsonText, newRecipient: newRecipient)
    }

    package func defaultSenderID() throws -> String? { sender.withLock { $0 } }

    package func rememberDefaultSender(_ id: String) throws { sender.withLock { $0 = id } }

    package func prepareNote(seq: Int64, now: Int) async throws -> EntryReadiness {
        guard let claimed = try await claim(seq, now: now), let contactID = claimed.contactID else { return .gone }
        return .note(contactID: contactID, body: claimed.entry.payload)
    }

    /// The team keeps no notes: an agent stores its note when its entry comes back sent.
    package func storeNotes(_ notes: [JSONValue], of contactID: String, complete: Bool) async throws {}

    package func prepareDelete(seq: Int64, now: Int) async throws -> String? {
        try await claim(seq, now: now)?.contactID
    }

    package func completeDelete(seq: Int64, contactID: String, now: Int) async throws {
        try await settle(seq, .sent, remoteID: contactID, tombstone: contactID, now: now)
    }

    private static func malformed(_ entry: OutboxEntry, _ problem: String) -> OutboxEntry.Failure {
        OutboxEntry.Failure(
            status: nil, code: "malformed_entry", message: "entry #\(entry.seq) (\(entry.kind.rawValue)) \(problem)",
            requestID: nil)
    }

    // MARK: Leases

    /// Renews every lease this worker holds.
    fileprivate func renewLeases() async {
        for (seq, fence) in held.withLock({ $0 }) {
            do {
                try await store.renewLease(seq: seq, fence: fence, lease: lease)
            } catch {
                store.logger.warning("\(worker): could not renew the lease of #\(seq): \(error)")
            }
        }
    }
}

/// Renews a worker's leases a third of the way through, for as long as it lives.
private final class LeaseKeeper: Sendable {
    private let task: Task<Void, Never>

    init(outbox: TeamOutbox) {
        let interval = outbox.lease / 3
        task = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard !Task.isCancelled else { return }
                await outbox.renewLeases()
            }
        }
    }

    deinit { task.cancel() }
}

extension TeamStore {
    /// Checks the workspace a flush or a pull talks to against the one the store belongs to:
    /// binds a store that has none, refuses another (`SyncError.Kind.foreignWorkspace`) unless
    /// `rebind`, which records the new one.
    package func bindWorkspace(_ binding: WorkspaceBinding, rebind: Bool) async throws {
        let refused: WorkspaceBinding? = try await transaction("binding the store to workspace \(binding.workspaceID)") {
            connection in
            for try await (workspace, origin) in try await connection.query(
                "SELECT workspace_id, origin FROM team_workspace FOR UPDATE", logger: self.logger
            ).decode((String, String).self) {
                let recorded = WorkspaceBinding(workspaceID: workspace, origin: origin)
                if recorded == binding { return nil }
                if !rebind { return recorded }
            }
            try await connection.query(
                """
                INSERT INTO team_workspace (workspace_id, origin) VALUES (\(binding.workspaceID), \(binding.origin))
                ON CONFLICT (singleton) DO UPDATE SET workspace_id = excluded.workspace_id, origin = excluded.origin
                """, logger: self.logger)
            return nil
        }
        guard let refused else { return }
        let mismatch =
            refused.workspaceID == binding.workspaceID
            ? "the server at \(binding.origin) is not the one the team store \(url) follows (\(refused.origin))"
            : "the server is workspace \(binding.workspaceID) at \(binding.origin), but the team store \(url) belongs to "
                + "workspace \(refused.workspaceID) (from \(refused.origin))"
        // Not a remedy a worker may take on its own: the store is the whole team's.
        throw SyncError(
            .foreignWorkspace,
            mismatch + ". Nothing was changed: point this at the store's server (--base-url or --region), or, if the "
                + "team really moves to this one, let its puller move the store (`intercom-sync sync --store URL --rebind`)")
    }
}

extension TeamStore {
    /// The name a worker goes by when it is given none: the machine's and the process's.
    public static var defaultWorkerName: String {
        "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"
    }

    /// Flushes the team's outbox once, as the flush worker `worker`, through a connection to
    /// Intercom set up as a mirror's would be (`configuration`: its concurrency, patience and
    /// log): each entry is claimed under a lease of `lease`, renewed while the flush runs.
    /// `honoursDeferral` leaves entries deferred after a transient failure until they are due,
    /// for a worker that keeps flushing. `rebind` lets the store move to the server's workspace.
    /// The workers spend one rate budget, kept in the store (`team_rate_budget`).
    public func flushOutbox(
        as worker: String, lease: Duration = .seconds(60), honoursDeferral: Bool = false, connection: IntercomConnection,
        configuration: IntercomMirror.Configuration = IntercomMirror.Configuration(), rebind: Bool = false,
        progress: (@Sendable (FlushProgress) -> Void)? = nil
    ) async throws -> FlushSummary {
        let outbox = TeamOutbox(store: self, worker: worker, lease: lease, honoursDeferral: honoursDeferral)
        return try await IntercomMirror.flush(
            outbox, connection: connection, configuration: configuration, sharedBudget: self, rebind: rebind,
            progress: progress)
    }

    /// Runs `sync` (the puller's sync of `mirror`) while publishing what it changes into the
    /// store, page by page as it goes, and the rest when it ends (see `TeamPublisher`). The
    /// store is bound to the mirror's workspace; one that belongs to another is refused unless
    /// `rebind`. Answers what `sync` answered, and how many contacts were published and
    /// changed the store.
    public nonisolated func publishing<T: Sendable>(
        from mirror: IntercomMirror, rebind: Bool = false, while sync: @Sendable () async throws -> T
    ) async throws -> (result: T, contacts: Int, changed: Int) {
        let (run, before) = try await TeamPublisher.begin(mirror, to: self, rebind: rebind)
        // Stopped by a flag between pages, never cancelled: a page taken from the notes is
        // published whole, or the run is marked failed and the next publishes everything.
        let stopping = Atomic<Bool>(false)
        let background = Task {
            var published = TeamPublisher.Published()
            while !stopping.load(ordering: .acquiring) {
                do {
                    let round = try await TeamPublisher.publishNoted(
                        mirror, to: self, run: run, rebind: rebind, until: { stopping.load(ordering: .acquiring) })
                    published = published + round
                    if round.contacts == 0 { try? await Task.sleep(for: .milliseconds(200)) }
                } catch {
                    // The last round, after the sync, tries again and reports it.
                    logger.warning("publishing while the sync runs: \(error)")
                    try? await Task.sleep(for: .seconds(1))
                }
            }
            return published
        }
        let result: T
        do {
            result = try await sync()
        } catch {
            stopping.store(true, ordering: .releasing)
            _ = await background.value
            // What the sync wrote before it failed is published all the same.
            _ = try? await TeamPublisher.finish(mirror, to: self, run: run, rebind: rebind)
            throw error
        }
        stopping.store(true, ordering: .releasing)
        let during = await background.value
        let after = try await TeamPublisher.finish(mirror, to: self, run: run, rebind: rebind)
        let published = before + during + after
        return (result, published.contacts, published.changed)
    }
}

/// Intercom's rate budget, kept in the store for every flush worker: each reports what its
/// answers said of the current window, and the store keeps the lowest remaining of the newest
/// window (Intercom's reset, in whole seconds, names a window).
extension TeamStore: SharedRateBudget {
    package func exchange(_ budget: RateLimitGovernor.Budget?) async throws -> RateLimitGovernor.Budget? {
        try await run("sharing the rate budget") { connection in
            let rows: PostgresRowSequence
            if let budget {
                rows = try await connection.query(
                    """
                    INSERT INTO team_rate_budget (singleton, window_limit, remaining, reset_at, updated_at)
                    VALUES (TRUE, \(budget.limit), \(budget.remaining), \(Int64(budget.reset.rounded())), now())
                    ON CONFLICT (singleton) DO UPDATE SET
                        window_limit = CASE WHEN excluded.reset_at >= team_rate_budget.reset_at
                            THEN excluded.window_limit ELSE team_rate_budget.window_limit END,
                        remaining = CASE
                            WHEN excluded.reset_at > team_rate_budget.reset_at THEN excluded.remaining
                            WHEN excluded.reset_at = team_rate_budget.reset_at
                                THEN least(excluded.remaining, team_rate_budget.remaining)
                            ELSE team_rate_budget.remaining END,
                        reset_at = greatest(excluded.reset_at, team_rate_budget.reset_at),
                        updated_at = now()
                    RETURNING window_limit, remaining, reset_at
                    """, logger: self.logger)
            } else {
                rows = try await connection.query(
                    "SELECT window_limit, remaining, reset_at FROM team_rate_budget", logger: self.logger)
            }
            var shared: RateLimitGovernor.Budget?
            for try await (limit, remaining, reset) in rows.decode((Int?, Int?, Int64?).self) {
                guard let limit, let remaining, let reset else { continue }
                shared = RateLimitGovernor.Budget(limit: limit, remaining: remaining, reset: Double(reset))
            }
            return shared
        }
    }
}
