import Foundation
import IntercomSync
import PostgresNIO
import Synchronization

/// An entry a flush worker claimed: it may send it until its lease runs out, and settles it
/// with its fencing token.
public struct ClaimedEntry: Sendable, Equatable {
    public var entry: OutboxEntry
    /// The fencing token of this claim: only a settle that carries it is recorded.
    public var fence: Int64
    /// Who staged the entry, and its sequence number there.
    public var origin: String
    public var originSeq: Int64
    /// The contact the entry acts on now: the Intercom id its create was given, when it waits
    /// for one that was sent.
    public var contactID: String?
    /// When the create the entry waits for was sent (Unix seconds), if it waits for one.
    public var awaitedCreateSentAt: Int?
    /// What the flush learnt that the agent who staged the entry needs (JSON), if anything.
    public var outcome: String?
}

/// The team outbox: entries pushed by agents, claimed by flush workers on any number of
/// machines.
///
/// A worker claims ready entries (pending, due, and whose create, if they wait for one, was
/// sent) with `FOR UPDATE SKIP LOCKED`, so two workers never claim the same entry, under a
/// lease and a fencing token drawn from one sequence. A worker whose lease ran out finds its
/// settle refused (`TeamStoreError.Kind.fenced`), since the entry may now be another's. An
/// expired lease puts the entry back in the queue, except a message's or a note's: it may
/// have reached Intercom, so it becomes `unknown`, as on a laptop, for a person to decide.
extension TeamStore: OutboxUpstream {
    /// The columns an entry is read from, in `claimedEntry`.
    static let entryColumnNames = [
        "seq", "kind", "contact_id", "depends_on", "payload", "state", "attempts", "next_attempt_at", "last_error_status",
        "last_error_code", "last_error_message", "last_error_request_id", "remote_id", "created_at", "updated_at", "fence",
        "origin", "origin_seq",
    ]

    /// `entryColumnNames` of the entry `o`, and what its awaited create says of it (the
    /// contact's Intercom id, when it was sent), as a select list.
    static let entryColumns =
        entryColumnNames.map { "o.\($0)" }.joined(separator: ", ")
            + """
            , o.outcome,
            CASE WHEN o.depends_on IS NULL THEN o.contact_id
                ELSE coalesce((SELECT d.remote_id FROM team_outbox d WHERE d.seq = o.depends_on AND d.state = 'sent'),
                    o.contact_id) END AS resolved_contact_id,
            (SELECT d.updated_at FROM team_outbox d WHERE d.seq = o.depends_on AND d.state = 'sent') AS awaited_sent_at
            """

    /// The condition an entry `c` is ready to claim on: pending, due, its create (if it waits
    /// for one) sent, and, since workers flush at once, the order of one contact's entries
    /// kept: an archive or delete waits while an entry staged before it for the same contact
    /// is queued or in flight (an archived contact takes no edit, message or note), a tagging,
    /// untagging or edit waits for those staged before it (a tag then untag ends untagged; an
    /// edit merges against the one before it), and any other entry waits for an unarchive
    /// staged before it.
    /// `due` is the placeholder of the time by which a deferred entry is due.
    static func readyCondition(due: String) -> String {
        """
        c.state = 'pending' AND (c.next_attempt_at IS NULL OR c.next_attempt_at <= \(due))
            AND (c.depends_on IS NULL
                OR EXISTS (SELECT 1 FROM team_outbox d WHERE d.seq = c.depends_on AND d.state = 'sent'))
            AND (c.kind NOT IN ('archive_contact', 'delete_contact') OR NOT EXISTS (
                SELECT 1 FROM team_outbox e
                WHERE e.contact_id = c.contact_id AND e.seq < c.seq AND e.state IN ('pending', 'in_flight')))
            AND (c.kind NOT IN ('tag_contact', 'untag_contact', 'update_contact') OR NOT EXISTS (
                SELECT 1 FROM team_outbox t
                WHERE t.contact_id = c.contact_id AND t.seq < c.seq
                    AND t.kind IN ('tag_contact', 'untag_contact', 'update_contact')
                    AND t.state IN ('pending', 'in_flight')))
            AND (c.kind = 'unarchive_contact' OR NOT EXISTS (
                SELECT 1 FROM team_outbox u
                WHERE u.contact_id = c.contact_id AND u.seq < c.seq AND u.kind = 'unarchive_contact'
                    AND u.state IN ('pending', 'in_flight')))
        """
    }

    /// Adds an agent's entries to the team outbox, in their order, and answers each one's
    /// sequence number in the team outbox. An entry already pushed (the same origin and
    /// origin sequence) is not added again: while no worker has taken it, it takes the payload
    /// pushed last (the agent's latest view of it, say a create its user edited since), and
    /// after, it stays as it was taken, unless it failed or ended unknown and comes with a new
    /// `retryMark` (a person queued it again): then it is queued again. One that ended comes
    /// back to its origin with the next outcomes it reads. One pushed before as another kind
    /// is refused.
    public func push(_ entries: [PushedEntry], from origin: String, now: Int) async throws -> [Int64] {
        guard !origin.isEmpty else { throw TeamStoreError(.badEntry, "a pushed entry needs its origin's name") }
        return try await transaction("pushing \(entries.count) outbox entries from \(origin)") { connection in
            var seqs: [Int64] = []
            for entry in entries {
                var dependsOn: Int64?
                if let awaited = entry.dependsOnOriginSeq {
                    dependsOn = try await Self.teamSeq(
                        origin: origin, originSeq: awaited, on: connection, logger: self.logger)
                    guard dependsOn != nil else {
                        throw TeamStoreError(
                            .badEntry,
                            "entry #\(entry.originSeq) of \(origin) waits for #\(awaited), which was never pushed")
                    }
                }
                let rows = try await connection.query(
                    """
                    INSERT INTO team_outbox (
                        kind, contact_id, depends_on, payload, origin, origin_seq, retry_mark, created_at, updated_at)
                    VALUES (\(entry.kind.rawValue), \(entry.contactID), \(dependsOn), \(entry.payload), \(origin),
                        \(entry.originSeq), \(entry.retryMark.map(Int64.init)), \(entry.createdAt), \(now))
                    ON CONFLICT (origin, origin_seq) DO UPDATE SET payload = excluded.payload, updated_at = excluded.updated_at,
                        retry_mark = excluded.retry_mark, state = 'pending', next_attempt_at = NULL,
                        last_error_status = NULL, last_error_code = NULL, last_error_message = NULL,
                        last_error_request_id = NULL
                    WHERE team_outbox.kind = excluded.kind
                        AND ((team_outbox.state = 'pending' AND team_outbox.payload IS DISTINCT FROM excluded.payload)
                            OR (excluded.retry_mark IS NOT NULL
                                AND excluded.retry_mark IS DISTINCT FROM team_outbox.retry_mark
                                AND team_outbox.state IN ('failed', 'unknown')))
                    RETURNING seq
                    """, logger: self.logger)
                var seq: Int64?
                for try await found in rows.decode(Int64.self) { seq = found }
                if let seq {
                    seqs.append(seq)
                    continue
                }
                // Pushed before: the same entry, or a number reused for another kind, which is refused.
                for try await (found, kind) in try await connection.query(
                    "SELECT seq, kind FROM team_outbox WHERE origin = \(origin) AND origin_seq = \(entry.originSeq)",
                    logger: self.logger
                ).decode((Int64, String).self) {
                    guard kind == entry.kind.rawValue else {
                        throw TeamStoreError(
                            .badEntry,
                            "entry #\(entry.originSeq) of \(origin) was pushed before as another entry (#\(found), \(kind))")
                    }
                    seq = found
                }
                guard let seq else {
                    throw TeamStoreError(.storage, "entry #\(entry.originSeq) of \(origin) was neither added nor found")
                }
                // Pushed again after it ended: its origin may never have learnt how (a push
                // whose answer was lost), so its outcome takes a new change number.
                try await connection.query(
                    """
                    UPDATE team_outbox SET updated_at = updated_at
                    WHERE seq = \(seq) AND state IN ('sent', 'failed', 'unknown', 'conflict', 'superseded')
                    """, logger: self.logger)
                seqs.append(seq)
            }
            return seqs
        }
    }

    /// The entries `origin` pushed that ended (or changed how they ended) after change
    /// `change`, in change order, at most `limit`, each with the contact the replica holds for
    /// a create or an update.
    public func outcomes(of origin: String, since change: Int64, limit: Int) async throws -> [UpstreamOutcome] {
        try await run("reading the outcomes of \(origin)'s entries") { connection in
            let rows = try await connection.query(
                """
                SELECT o.origin_seq, o.kind, o.state, o.remote_id, o.last_error_status, o.last_error_code,
                    o.last_error_message, o.last_error_request_id, o.payload, o.outcome, o.change_no,
                    CASE WHEN o.kind IN ('create_contact', 'update_contact') THEN
                        (SELECT c.body FROM team_contacts c WHERE c.id = o.remote_id) END AS contact_body
                FROM team_outbox o
                WHERE o.origin = \(origin) AND o.change_no > \(change)
                    AND o.state IN ('sent', 'failed', 'unknown', 'conflict', 'superseded')
                ORDER BY o.change_no LIMIT \(Int64(limit))
                """, logger: self.logger)
            var outcomes: [UpstreamOutcome] = []
            for try await row in rows {
                let cells = row.makeRandomAccess()
                func value<T: PostgresDecodable>(_ name: String, _ type: T.Type) throws -> T {
                    try cells[name].decode(T.self)
                }
                let (entryKind, entryState, failure) = try Self.kindStateAndFailure(cells)
                outcomes.append(
                    UpstreamOutcome(
                        originSeq: try value("origin_seq", Int64.self), kind: entryKind, state: entryState,
                        remoteID: try value("remote_id", String?.self), failure: failure,
                        payload: try value("payload", String.self), outcome: try value("outcome", String?.self),
                        contactBody: try value("contact_body", String?.self), change: try value("change_no", Int64.self)))
            }
            return outcomes
        }
    }

    private static func teamSeq(
        origin: String, originSeq: Int64, on connection: PostgresConnection, logger: Logger
    ) async throws -> Int64? {
        for try await seq in try await connection.query(
            "SELECT seq FROM team_outbox WHERE origin = \(origin) AND origin_seq = \(originSeq)", logger: logger
        ).decode(Int64.self) {
            return seq
        }
        return nil
    }

    /// Claims up to `limit` ready entries of `kinds` (all kinds when nil) in queue order, or the
    /// one entry `only` when it is ready, for `worker`, leased for `lease` (PostgreSQL's clock
    /// decides when a lease ends, so workers' clocks do not matter). Expired leases are handled
    /// first.
    ///
    /// An entry deferred after a transient failure is ready once its `next_attempt_at` is
    /// before `due` (nil: at once, as a flush someone started by hand takes it).
    public func claim(
        worker: String, lease: Duration, limit: Int, kinds: [OutboxEntry.Kind]? = nil, only seq: Int64? = nil,
        due: Int? = nil, now: Int
    ) async throws -> [ClaimedEntry] {
        let seconds = Self.seconds(lease)
        let kindNames = (kinds ?? OutboxEntry.Kind.allCases).map(\.rawValue)
        // A claim whose commit's answer was lost is run again: its first try may have taken
        // entries, which its id finds.
        let claimID = UUID().uuidString
        let tries = Atomic(0)
        return try await transaction("claiming outbox entries for \(worker)") { connection in
            var claimed: [ClaimedEntry] = []
            if tries.add(1, ordering: .relaxed).newValue > 1 {
                for try await row in try await connection.query(
                    """
                    SELECT \(unescaped: Self.entryColumns) FROM team_outbox o
                    WHERE o.state = 'in_flight' AND o.claim_id = \(claimID) AND o.lease_owner = \(worker)
                        AND o.lease_until > now()
                    """, logger: self.logger)
                {
                    claimed.append(try Self.claimedEntry(row))
                }
                if !claimed.isEmpty { return claimed.sorted { $0.entry.seq < $1.entry.seq } }
            }
            try await Self.expireLeases(now: now, on: connection, logger: self.logger)
            let rows = try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        WITH ready AS MATERIALIZED (
                            SELECT c.seq FROM team_outbox c
                            WHERE \(Self.readyCondition(due: "$7")) AND c.kind = ANY($5) AND ($6 < 0 OR c.seq = $6)
                            ORDER BY c.seq LIMIT $4
                            FOR UPDATE OF c SKIP LOCKED),
                        claimed AS (
                            UPDATE team_outbox o SET state = 'in_flight', lease_owner = $1,
                                lease_until = now() + make_interval(secs => $2), fence = nextval('team_fences'),
                                attempts = o.attempts + 1, updated_at = $3, claim_id = $8
                            FROM ready WHERE o.seq = ready.seq
                            RETURNING o.*)
                        SELECT \(Self.entryColumns) FROM claimed o
                        """,
                    binds: try Self.binds(
                        worker, seconds, Int64(now), Int64(limit), kindNames, seq ?? -1, Int64(due ?? Int.max), claimID)),
                logger: self.logger)
            for try await row in rows { claimed.append(try Self.claimedEntry(row)) }
            return claimed.sorted { $0.entry.seq < $1.entry.seq }
        }
    }

    /// Up to `limit` entries of `kinds` ready to claim after `seq`, in queue order, without
    /// claiming them (`due` as `claim` takes it).
    public func readyEntries(of kinds: [OutboxEntry.Kind], after seq: Int64, limit: Int, due: Int? = nil) async throws
        -> [OutboxEntry]
    {
        let kindNames = kinds.map(\.rawValue)
        return try await run("reading the outbox") { connection in
            let rows = try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT \(Self.entryColumns) FROM team_outbox o WHERE o.seq IN (
                            SELECT c.seq FROM team_outbox c
                            WHERE \(Self.readyCondition(due: "$3")) AND c.kind = ANY($1) AND c.seq > $2
                            ORDER BY c.seq LIMIT $4)
                        ORDER BY o.seq
                        """, binds: try Self.binds(kindNames, seq, Int64(due ?? Int.max), Int64(limit))),
                logger: self.logger)
            var entries: [OutboxEntry] = []
            for try await row in rows { entries.append(try Self.claimedEntry(row).entry) }
            return entries
        }
    }

    /// Puts back entries whose lease ran out (`expireLeases`) and answers how many entries
    /// wait in the queue, due or not.
    public func beginFlush(now: Int) async throws -> Int {
        try await transaction("starting a flush") { connection in
            try await Self.expireLeases(now: now, on: connection, logger: self.logger)
            for try await count in try await connection.query(
                "SELECT count(*) FROM team_outbox WHERE state = 'pending'", logger: self.logger
            ).decode(Int64.self) {
                return Int(count)
            }
            return 0
        }
    }

    /// How many entries are in each state.
    public func outboxCounts() async throws -> [OutboxState: Int] {
        try await run("counting the outbox") { connection in
            var counts: [OutboxState: Int] = [:]
            for try await (state, count) in try await connection.query(
                "SELECT state, count(*) FROM team_outbox GROUP BY state", logger: self.logger
            ).decode((String, Int64).self) {
                if let state = OutboxState(rawValue: state) { counts[state] = Int(count) }
            }
            return counts
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// Makes a worker's lease on an entry longer, while it is still the entry's holder.
    public func renewLease(seq: Int64, fence: Int64, lease: Duration) async throws {
        let seconds = Self.seconds(lease)
        try await fenced(seq: seq, fence: fence, doing: "renewing the lease of #\(seq)") { connection in
            try await Self.count(
                connection.query(
                    PostgresQuery(
                        unsafeSQL: """
                            UPDATE team_outbox SET lease_until = now() + make_interval(secs => $1)
                            WHERE seq = $2 AND fence = $3 AND state = 'in_flight' RETURNING seq
                            """, binds: try Self.binds(seconds, seq, fence)), logger: self.logger))
        }
    }

    /// Records a claimed entry's outcome, if `fence` still holds it: a worker whose lease ran
    /// out, and whose entry another worker may have claimed since, is refused with
    /// `TeamStoreError.Kind.fenced`, and nothing is written. A message or note whose lease ran
    /// out (now `unknown`, and claimed by no one since) still takes its worker's outcome.
    ///
    /// In the same transaction, `contact` (a body Intercom answered) is stored in the replica
    /// and `tombstone` (a contact Intercom no longer has) is tombstoned.
    public func settle(
        seq: Int64, fence: Int64, state: OutboxState, remoteID: String? = nil, error: OutboxEntry.Failure? = nil,
        nextAttemptAt: Int? = nil, outcome: String? = nil, contact: String? = nil, tombstone: String? = nil, now: Int
    ) async throws {
        try await fenced(seq: seq, fence: fence, doing: "settling #\(seq) as \(state.rawValue)") { connection in
            let changed = try await Self.count(
                connection.query(
                    """
                    UPDATE team_outbox SET state = \(state.rawValue), lease_owner = NULL, lease_until = NULL,
                        remote_id = coalesce(\(remoteID), remote_id), last_error_status = \(error?.status),
                        last_error_code = \(error?.code), last_error_message = \(error?.message),
                        last_error_request_id = \(error?.requestID), next_attempt_at = \(nextAttemptAt),
                        outcome = \(outcome), updated_at = \(now)
                    WHERE seq = \(seq) AND fence = \(fence)
                        AND (state = 'in_flight' OR (state = 'unknown' AND last_error_code = 'lease_expired'))
                    RETURNING seq
                    """, logger: self.logger))
            guard changed > 0 else {
                // A retry after a commit whose answer was lost finds its own outcome there.
                for try await (found, held) in try await connection.query(
                    "SELECT state, fence FROM team_outbox WHERE seq = \(seq)", logger: self.logger
                ).decode((String, Int64?).self) where found == state.rawValue && held == fence {
                    return 1
                }
                return 0
            }
            if let contact {
                _ = try await Self.storeContacts(
                    [try Self.storable(contact)], fetchedAt: now, on: connection, logger: self.logger)
            }
            if let tombstone {
                _ = try await Self.tombstoneContacts([tombstone], at: now, on: connection, logger: self.logger)
            }
            return changed
        }
    }

    /// Runs `update` in a transaction; it answers how many rows it changed, and none means the
    /// fence no longer holds the entry: refused with `fenced`.
    private func fenced(
        seq: Int64, fence: Int64, doing: String, _ update: @Sendable @escaping (PostgresConnection) async throws -> Int
    ) async throws {
        let changed = try await transaction(doing, update)
        guard changed == 0 else { return }
        throw TeamStoreError(
            .fenced,
            "entry #\(seq) is no longer held by fence \(fence): its lease ran out and it was put back in the queue "
                + "or claimed by another worker, so this outcome is not recorded")
    }

    static func count(_ rows: PostgresRowSequence) async throws -> Int {
        var count = 0
        for try await _ in rows { count += 1 }
        return count
    }

    /// Puts entries whose lease ran out back in the queue, but a message or a note, which may
    /// have reached Intercom: it becomes `unknown`.
    static func expireLeases(now: Int, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            """
            UPDATE team_outbox SET
                state = CASE WHEN kind IN ('send_message', 'add_note') THEN 'unknown' ELSE 'pending' END,
                last_error_code = 'lease_expired',
                last_error_message = 'the worker ' || coalesce(lease_owner, '?')
                    || ' that was sending it stopped before it settled: it may have reached Intercom',
                lease_owner = NULL, lease_until = NULL, updated_at = \(now)
            WHERE state = 'in_flight' AND lease_until < now()
            """, logger: logger)
    }

    /// The team outbox's entries in `states`, in queue order, at most `limit`.
    public func outboxEntries(states: Set<OutboxState> = Set(OutboxState.allCases), limit: Int = 10_000) async throws
        -> [ClaimedEntry]
    {
        let names = states.map(\.rawValue).sorted()
        return try await run("listing the outbox") { connection in
            let rows = try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT \(Self.entryColumns) FROM team_outbox o WHERE o.state = ANY($1) ORDER BY o.seq LIMIT $2
                        """, binds: try Self.binds(names, Int64(limit))), logger: self.logger)
            var entries: [ClaimedEntry] = []
            for try await row in rows { entries.append(try Self.claimedEntry(row)) }
            return entries
        }
    }

    static func binds(_ values: any PostgresEncodable & Sendable...) throws -> PostgresBindings {
        var bindings = PostgresBindings()
        for value in values { try bindings.append(value) }
        return bindings
    }

    /// An entry row's kind, state and last failure, read from their columns.
    static func kindStateAndFailure(_ cells: PostgresRandomAccessRow) throws -> (
        OutboxEntry.Kind, OutboxState, OutboxEntry.Failure?
    ) {
        func value<T: PostgresDecodable>(_ name: String, _ type: T.Type) throws -> T { try cells[name].decode(T.self) }
        let kind = try value("kind", String.self)
        let state = try value("state", String.self)
        guard let entryKind = OutboxEntry.Kind(rawValue: kind), let entryState = OutboxState(rawValue: state) else {
            throw TeamStoreError(.badEntry, "the team outbox has an entry of kind \(kind) in state \(state)")
        }
        guard let code = try value("last_error_code", String?.self) else { return (entryKind, entryState, nil) }
        return (
            entryKind, entryState,
            OutboxEntry.Failure(
                status: try value("last_error_status", Int?.self), code: code,
                message: try value("last_error_message", String?.self) ?? "",
                requestID: try value("last_error_request_id", String?.self))
        )
    }

    static func claimedEntry(_ row: PostgresRow) throws -> ClaimedEntry {
        let cells = row.makeRandomAccess()
        func value<T: PostgresDecodable>(_ name: String, _ type: T.Type) throws -> T { try cells[name].decode(T.self) }
        let (entryKind, entryState, failure) = try kindStateAndFailure(cells)
        let entry = OutboxEntry(
            seq: try value("seq", Int64.self), kind: entryKind, contactID: try value("contact_id", String?.self),
            dependsOn: try value("depends_on", Int64?.self), payload: try value("payload", String.self), state: entryState,
            attempts: try value("attempts", Int.self), nextAttemptAt: try value("next_attempt_at", Int?.self),
            lastError: failure, remoteID: try value("remote_id", String?.self), createdAt: try value("created_at", Int.self),
            updatedAt: try value("updated_at", Int.self))
        return ClaimedEntry(
            entry: entry, fence: try value("fence", Int64?.self) ?? 0, origin: try value("origin", String.self),
            originSeq: try value("origin_seq", Int64.self), contactID: try value("resolved_contact_id", String?.self),
            awaitedCreateSentAt: try value("awaited_sent_at", Int?.self), outcome: try value("outcome", String?.self))
    }
}
