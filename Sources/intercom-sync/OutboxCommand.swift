import ArgumentParser
import CLISupport
import Foundation
import IntercomSync
import IntercomSyncTeam
import Synchronization

struct OutboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outbox",
        abstract:
            "List, send, re-queue, resolve or drop staged creates, edits, taggings, messages, notes, archives and deletes.",
        discussion: """
            Entry states: pending (waiting to be sent), in_flight (being sent), sent, failed \
            (Intercom refused it; see its error), unknown (a message or note whose answer was \
            lost: it may or may not have been sent, and is never re-sent on its own), conflict \
            (an edit of a field that was changed on Intercom too: see `outbox resolve`), \
            superseded (ended without a request of its own, needing nothing: a settled \
            conflict, or edits a delete won over; its error says which).
            """,
        subcommands: [
            OutboxListCommand.self, OutboxFlushCommand.self, OutboxResolveCommand.self, OutboxRetryCommand.self,
            OutboxDropCommand.self,
        ]
    )
}

struct OutboxListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Show the outbox: each entry's state, attempts, last error and remote id.",
        discussion: """
            Contacts from `contacts import` get their create entries when a flush reaches them; \
            until then the list says how many wait, and `status` counts them as pending.

            Examples:
              intercom-sync outbox list
              intercom-sync outbox list --state failed --state unknown
              intercom-sync outbox list --state conflict
              intercom-sync outbox list --limit 20
              intercom-sync outbox list --json | jq '.[] | select(.state == "failed")'
            """
    )

    @OptionGroup var mirror: MirrorOptions

    @Option(
        help:
            "Only entries in this state (repeatable): pending, in_flight, sent, failed, unknown, conflict, superseded.")
    var state: [OutboxState] = []

    @Option(
        parsing: .unconditional, help: "Show at most this many entries, oldest first (after a large import the queue is long).")
    var limit: Int?

    @Flag(help: "Print a JSON array of entries.")
    var json = false

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    func run() async throws {
        let store = try await mirror.facade(.readOnly)
        let states = state.isEmpty ? Set(OutboxState.allCases) : Set(state)
        let entries = try await store.outbox(states: states, limit: limit ?? .max)
        let counts = try await store.status().outbox
        if let limit, entries.count == limit {
            let total = counts.entries(in: states)
            if total > limit {
                Output.note("showing the first \(limit) of \(total) entries: raise --limit, or pick with --state")
            }
        }
        let imported = states.contains(.pending) ? counts.importsWaiting : 0
        if imported > 0 {
            Output.note("\(imported) imported contacts wait to be pushed too: the next flush queues their creates")
        }
        // An update entry stands for its contact's edits, which the mirror keeps by field.
        var edited: [Int64: [PendingEdit]] = [:]
        for entry in entries where entry.kind == .updateContact && [.pending, .inFlight, .failed].contains(entry.state) {
            edited[entry.seq] = try await store.pendingEdits(ofContact: entry.contactID ?? "")
        }
        if json {
            Output.data(
                JSONValue.array(
                    entries.map { entry in
                        var fields = OutboxRendering.json(entry)
                        if let edits = edited[entry.seq], case .object(var object) = fields {
                            object["pending_edits"] = .array(
                                edits.map {
                                    .object(["field": .string($0.field.description), "base": $0.base ?? .null, "mine": $0.mine])
                                })
                            fields = .object(object)
                        }
                        return fields
                    }
                ).jsonText)
            return
        }
        guard !entries.isEmpty else {
            if imported > 0 { return }
            Output.line(state.isEmpty ? "the outbox is empty" : "no entries in that state")
            return
        }
        Output.line(OutboxRendering.table(entries, edited: edited))
    }
}

struct OutboxFlushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flush",
        abstract: "Send what the outbox holds, in order: creates, edits, taggings, messages, notes, then archives and deletes.",
        discussion: """
            Each entry is marked in_flight (committed) before its request goes out. Creates are \
            retried on any transient failure and adopt an existing contact on 409 (writing only \
            the fields it lacks: a field it holds another value for waits as a conflict). Edits \
            read the contact first and merge field by field; a field a colleague changed too \
            waits as a conflict. Messages and notes are retried only when Intercom certainly did \
            not get them (unreachable, 429), and end unknown otherwise. Taggings, edits, \
            archives and deletes may be sent again without harm. A failed create blocks only the \
            entries that wait for it. A 401 stops the flush. Requests are paced by Intercom's \
            rate-limit headers. One sync or flush runs at a time per mirror.

            When Intercom cannot be reached (the host refuses connections after the retries, or \
            three requests in a row get no answer), the flush stops at once and keeps every \
            entry it has not sent for the next flush. A server that accepts connections but \
            never answers costs two --timeout periods a request (about a minute by default).

            Exit status: 0 all is sent, superseded or still queued; 3 some entries are failed, \
            unknown or in conflict, from this flush or an earlier one (see `outbox list`); 4 Intercom could not be reached: the entries not sent are \
            kept; 5 another sync, import or flush holds the mirror; 1 the flush could not go on \
            (the token was refused, the mirror cannot be written).

            With --store (or INTERCOM_SYNC_STORE), the flush drains a team's outbox in \
            PostgreSQL instead of the mirror's, as one of any number of flush workers on any \
            number of machines: each entry is claimed by one worker under a lease (--lease) \
            that the worker renews while it sends. A worker stopped for longer than its lease \
            loses its entries to the others: creates, edits, taggings, archives and deletes are \
            sent again (safely), messages and notes become unknown. --follow keeps the worker \
            running, flushing as entries arrive, until SIGINT or SIGTERM.

            Examples:
              intercom-sync outbox flush
              intercom-sync outbox flush --json
              # against `intercom-sync sim`:
              intercom-sync outbox flush --base-url http://127.0.0.1:8080
              # a flush worker of a team (password from PGPASSWORD):
              intercom-sync outbox flush --store postgres://worker@db/support --follow
            """
    )

    @OptionGroup var mirror: MirrorOptions
    @OptionGroup var connection: ConnectionOptions

    @Option(
        parsing: .unconditional, help: "Requests in flight at once (1-16).")
    var concurrency = 4

    @Flag(help: "Send to this server even though the mirror was synced from another workspace or API host.")
    var rebind = false

    @OptionGroup var wait: WaitOption

    @Option(
        help: ArgumentHelp(
            "Flush a team's outbox in this store, as one of its workers (default: $INTERCOM_SYNC_STORE).",
            valueName: "postgres-url"))
    var store: String?

    @Option(
        help: ArgumentHelp(
            "Push the mirror's entries to this team store's outbox (default: the store `sync --upstream` followed).",
            valueName: "postgres-url"))
    var upstream: String?

    @Option(help: ArgumentHelp("This worker's name in the team store (default: host:pid).", valueName: "name"))
    var worker: String?

    @Option(help: ArgumentHelp("Seconds a claimed entry stays this worker's without renewal (2-3600).", valueName: "seconds"))
    var lease = 60

    @Flag(help: "With --store: keep flushing as entries arrive, until SIGINT or SIGTERM.")
    var follow = false

    @Flag(help: "Print the summary as one JSON object.")
    var json = false

    func validate() throws {
        guard (1...16).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 16") }
        guard (2...3600).contains(lease) else {
            throw ValidationError("--lease must be between 2 and 3600 seconds, not \(lease)")
        }
        if let worker, worker.isEmpty || worker.count > 200 || worker.unicodeScalars.contains(where: { $0.value < 0x20 }) {
            throw ValidationError("--worker takes a name of 1 to 200 printable characters")
        }
    }

    func run() async throws {
        if let url = try TeamStoreAccess.url(store, variable: "INTERCOM_SYNC_STORE") {
            try await flushTeam(url)
            return
        }
        if follow || worker != nil {
            throw ValidationError("--follow and --worker are for a team's flush workers: give --store")
        }
        var team = try TeamStoreAccess.url(upstream, variable: "INTERCOM_SYNC_UPSTREAM")
        if team == nil { team = try await SyncCommand.recordedUpstream(of: mirror) }
        if let team {
            try await push(to: team)
            return
        }
        let intercom = try connection.intercomConnection()
        let outbox = try await mirror.facade(
            .existing, connection: intercom,
            configuration: connection.configured(
                IntercomMirror.Configuration(flushConcurrency: concurrency, lockWait: .seconds(wait.seconds))))
        let summary = try await Self.flush(outbox, rebind: rebind, label: "flush")
        try report(summary)
    }

    /// Prints a flush's summary and exits as the discussion says.
    func report(_ summary: FlushSummary) throws {
        if json { Output.data(OutboxRendering.json(summary).jsonText) } else { Output.line(OutboxRendering.text(summary)) }
        if let reason = summary.stoppedBy {
            throw CommandFailure("the flush stopped: \(Advice.explained(reason))")
        }
        try Self.checkReached(summary)
        if summary.needsAttention {
            Output.note(
                "\(summary.failedInOutbox) failed, \(summary.unknownInOutbox) unknown and \(summary.conflictInOutbox) "
                    + "conflicting entries need a decision: `intercom-sync outbox list --state failed --state unknown "
                    + "--state conflict`, then `outbox retry`, `outbox resolve` or `outbox drop`")
            throw ExitCode(3)
        }
    }
}

extension OutboxFlushCommand {
    /// Pushes the mirror's pending entries to the team's outbox: the team's flush workers send
    /// them, and a later `sync` brings back how they ended.
    func push(to url: TeamStoreURL) async throws {
        let local = try await mirror.facade(
            .existing, configuration: IntercomMirror.Configuration(lockWait: .seconds(wait.seconds)))
        let store = try await TeamStoreAccess.open(url, patience: .seconds(5), creating: false)
        defer { Task { await store.close() } }
        let pushed: Int
        do {
            pushed = try await local.push(to: store)
        } catch let error as TeamStoreError where error.kind == .unreachable {
            Output.note("error: \(error.description)\nthe entries not pushed are kept in the outbox for the next `outbox flush`")
            throw ExitCode(4)
        }
        if json {
            Output.data(JSONValue.object(["upstream": .string(url.description), "pushed": .int(Int64(pushed))]).jsonText)
        } else {
            Output.line(
                "pushed \(pushed) entr\(pushed == 1 ? "y" : "ies") to the team's outbox at \(url): the team's flush workers "
                    + "send \(pushed == 1 ? "it" : "them"), and `intercom-sync sync` brings back how \(pushed == 1 ? "it" : "they") ended"
            )
        }
    }

    /// Flushes a team's outbox as one of its workers: once, or with --follow until a signal.
    func flushTeam(_ url: TeamStoreURL) async throws {
        if rebind {
            throw ValidationError(
                "--rebind does not go with --store: a worker cannot move the whole team's store to another server "
                    + "(its puller does, with `intercom-sync sync --store URL --rebind`)")
        }
        let intercom = try connection.intercomConnection()
        // A restarted PostgreSQL costs a retry, not the flush.
        let store = try await TeamStoreAccess.open(url, patience: .seconds(30))
        defer { Task { await store.close() } }
        let name = worker ?? TeamStore.defaultWorkerName
        let configuration = connection.configured(IntercomMirror.Configuration(flushConcurrency: concurrency))
        func flushOnce() async throws -> FlushSummary {
            try await store.flushOutbox(
                as: name, lease: .seconds(lease), honoursDeferral: follow, connection: intercom,
                configuration: configuration, rebind: rebind)
        }
        guard follow else {
            try report(try await flushOnce())
            return
        }
        let stop = StopSignal()
        var pause = 1.0
        while !stop.requested {
            let summary = try await flushOnce()
            if let reason = summary.stoppedBy {
                throw CommandFailure("the flush stopped: \(Advice.explained(reason))")
            }
            let acted = summary.sent + summary.failed + summary.unknown + summary.conflicts > 0
            if acted {
                if json {
                    Output.data(OutboxRendering.json(summary).jsonText)
                } else {
                    Output.line(OutboxRendering.text(summary))
                }
            }
            // Intercom out of reach: wait longer each time, up to a minute.
            pause = summary.unreachable != nil ? min(pause * 2, 60) : (acted ? 0 : 1)
            await stop.sleep(seconds: pause)
        }
    }

    /// Exit 4 when the flush stopped because Intercom could not be reached.
    static func checkReached(_ summary: FlushSummary) throws {
        guard let cause = summary.unreachable else { return }
        Output.note(
            "error: Intercom could not be reached, so the flush stopped: \(cause)\n"
                + "\(summary.sent) sent; \(summary.pendingInOutbox) kept in the outbox for the next `intercom-sync outbox flush`")
        throw ExitCode(4)
    }

    /// Runs a flush with a progress bar on stderr.
    static func flush(_ mirror: IntercomMirror, rebind: Bool = false, label: String) async throws -> FlushSummary {
        let display = Mutex<ProgressBar?>(nil)
        let summary = try await mirror.flush(rebind: rebind) { progress in
            display.withLock { bar in
                if bar == nil { bar = ProgressBar(label, total: progress.total) }
                bar?.update(progress.done)
            }
        }
        display.withLock { $0?.finish() }
        return summary
    }
}

struct OutboxResolveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolve",
        abstract: "Settle an edit in conflict: keep yours (sent again) or Intercom's.",
        discussion: """
            An entry is in conflict when a field you edited offline was changed on Intercom \
            too: the flush sent the rest of your edit and neither value of that field. \
            `outbox list --state conflict` shows each such field's base (its value when you \
            edited it), mine and theirs. --keep mine queues your value again, and the next \
            flush sends it over theirs; --keep theirs drops your edit and shows Intercom's \
            value. --field settles one field and leaves the others in conflict.

            Examples:
              intercom-sync outbox list --state conflict
              intercom-sync outbox resolve 42 --keep mine
              intercom-sync outbox resolve 42 --keep theirs --field custom_attributes.plan
            """
    )

    @OptionGroup var mirror: MirrorOptions

    @Argument(help: "The entry's sequence number (from `outbox list --state conflict`).")
    var seq: Int64

    @Option(help: "Which value to keep: mine or theirs.")
    var keep: ConflictChoice

    @Option(help: ArgumentHelp("Settle only this field (as `outbox list` names it).", valueName: "field"))
    var field: String?

    @Flag(help: "Print {\"contact\", \"seq\", \"pending_fields\"} as JSON.")
    var json = false

    func validate() throws {
        if let field, ContactField(name: field) == nil {
            throw ValidationError(
                "--field takes a field as `outbox list` names it (name, email, phone, role, avatar, external_id, "
                    + "owner_id, unsubscribed_from_emails, custom_attributes.KEY), not \(field)")
        }
    }

    func run() async throws {
        let staged = try await mirror.facade(.existing).resolve(
            seq: seq, keep: keep, field: field.flatMap(ContactField.init(name:)))
        if json {
            Output.data(
                JSONValue.object([
                    "contact": .string(staged.contactID), "seq": staged.seq.map { .int($0) } ?? .null,
                    "pending_fields": .array(staged.pendingFields.map { .string($0.description) }),
                ]).jsonText)
            return
        }
        switch keep {
        case .mine:
            if let queued = staged.seq {
                Output.line(
                    "kept yours: #\(queued) sends " + staged.pendingFields.map(\.description).joined(separator: ", ")
                        + " of \(staged.contactID) at the next `intercom-sync outbox flush`")
            } else {
                Output.line("kept yours: \(staged.contactID) already shows it, and nothing is left to send")
            }
        case .theirs:
            Output.line("kept Intercom's value: the mirror shows it for \(staged.contactID)")
        }
    }
}

extension ConflictChoice: ExpressibleByArgument {}

struct OutboxRetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Put failed or unknown entries back in the queue for the next flush.",
        discussion: """
            Retrying an unknown message or note may send it twice, if the lost attempt did \
            reach Intercom: check the contact's conversations first, or, for a note, run \
            `contacts get --refresh`, which settles as sent a note Intercom lists. A sent or \
            superseded entry cannot be retried.

            Examples:
              intercom-sync outbox retry 12
              intercom-sync outbox retry --unknown
            """
    )

    @OptionGroup var mirror: MirrorOptions

    @Argument(help: "The entry's sequence number (from `outbox list`).")
    var seq: Int64?

    @Flag(help: "Re-queue every unknown entry.")
    var unknown = false

    func validate() throws {
        if (seq == nil) == !unknown { throw ValidationError("give one entry number, or --unknown") }
    }

    func run() async throws {
        let store = try await mirror.facade(.existing)
        if let seq {
            try await store.retryEntry(seq: seq)
            Output.line("entry #\(seq) is queued again")
        } else {
            let seqs = try await store.retryUnknownEntries()
            Output.line(
                seqs.isEmpty ? "no unknown entries" : "queued again: " + seqs.map { "#\($0)" }.joined(separator: ", "))
        }
    }
}

struct OutboxDropCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drop",
        abstract: "Remove an entry from the outbox, saying what depended on it.",
        discussion: """
            Dropping an unsent create also removes its local contact. Messages waiting for a \
            create are named, and dropped with it only with --cascade.

            Examples:
              intercom-sync outbox drop 12
              intercom-sync outbox drop 7 --cascade
            """
    )

    @OptionGroup var mirror: MirrorOptions

    @Argument(help: "The entry's sequence number (from `outbox list`).")
    var seq: Int64

    @Flag(help: "Also drop the entries that wait for this one.")
    var cascade = false

    func run() async throws {
        let dropped = try await mirror.facade(.existing).dropEntry(seq: seq, cascade: cascade)
        var text = "dropped entry #\(seq)"
        let dependents = dropped.seqs.dropFirst()
        if !dependents.isEmpty {
            text += " and the entries that waited for it: " + dependents.map { "#\($0)" }.joined(separator: ", ")
        }
        if let contact = dropped.removedContactID { text += "; removed the unpushed contact \(contact)" }
        Output.line(text)
    }
}

extension OutboxState: ExpressibleByArgument {}

/// How outbox entries and flush summaries are printed.
enum OutboxRendering {
    static func json(_ entry: OutboxEntry) -> JSONValue {
        var fields: [String: JSONValue] = [
            "seq": .int(entry.seq), "kind": .string(entry.kind.rawValue), "state": .string(entry.state.rawValue),
            "contact_id": entry.contactID.map(JSONValue.string) ?? .null,
            "depends_on": entry.dependsOn.map { .int($0) } ?? .null, "attempts": .int(Int64(entry.attempts)),
            "remote_id": entry.remoteID.map(JSONValue.string) ?? .null,
            "next_attempt_at": entry.nextAttemptAt.map { .int(Int64($0)) } ?? .null,
            "created_at": .int(Int64(entry.createdAt)), "updated_at": .int(Int64(entry.updatedAt)),
            "payload": (try? JSONValue(jsonText: entry.payload)) ?? .string(entry.payload), "last_error": .null,
        ]
        if let error = entry.lastError {
            fields["last_error"] = .object([
                "status": error.status.map { .int(Int64($0)) } ?? .null, "code": .string(error.code),
                "message": .string(error.message), "request_id": error.requestID.map(JSONValue.string) ?? .null,
            ])
        }
        return .object(fields)
    }

    /// `edited`: the fields each update entry stands for, shown in its last column.
    static func table(_ entries: [OutboxEntry], edited: [Int64: [PendingEdit]] = [:]) -> String {
        var rows = [["SEQ", "KIND", "STATE", "TRIES", "CONTACT", "REMOTE ID", "LAST ERROR"]]
        let sent = Set(entries.filter { $0.state == .sent }.map(\.seq))
        for entry in entries {
            var error = ""
            if let failure = entry.lastError {
                error = [failure.status.map(String.init), failure.code].compactMap { $0 }.joined(separator: " ")
                error += ": \(failure.message)"
                if let requestID = failure.requestID { error += " (request \(requestID))" }
            }
            if entry.state == .conflict {
                error = conflictText(entry)
            }
            if let edits = edited[entry.seq], !edits.isEmpty {
                let fields = "edits " + edits.map(\.field.description).joined(separator: ", ")
                error = [fields, error].filter { !$0.isEmpty }.joined(separator: "; ")
            }
            if let dependency = entry.dependsOn, entry.state == .pending, !sent.contains(dependency) {
                error = ["waits for #\(dependency)", error].filter { !$0.isEmpty }.joined(separator: "; ")
            }
            var kind = entry.kind.rawValue
            if entry.kind == .tagContact || entry.kind == .untagContact,
                let name = (try? JSONValue(jsonText: entry.payload))?["name"]?.string
            {
                kind += " \(JSONValue.string(name).jsonText)"
            }
            rows.append(
                [
                    String(entry.seq), kind, entry.state.rawValue, String(entry.attempts),
                    entry.contactID ?? "", entry.remoteID ?? "", error,
                ].map { TerminalText.escaped($0) })
        }
        let widths = (0..<rows[0].count - 1).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            zip(row.dropLast(), widths).map { $0.0.padding(toLength: $0.1, withPad: " ", startingAt: 0) }
                .joined(separator: "  ") + "  " + row[row.count - 1]
        }.joined(separator: "\n")
    }

    /// An entry's conflicts as `name: base "A", mine "B", theirs "C"`, one field after another.
    static func conflictText(_ entry: OutboxEntry) -> String {
        guard case .array(let items)? = (try? JSONValue(jsonText: entry.payload))?["conflicts"] else { return "" }
        return items.map { item in
            let field = item["field"]?.string ?? "?"
            let values = ["base", "mine", "theirs"].map { "\($0) \((item[$0] ?? .null).jsonText)" }
            return "\(field): " + values.joined(separator: ", ")
        }.joined(separator: "; ")
    }

    static func text(_ summary: FlushSummary) -> String {
        var lines = [
            "flush: \(summary.contactsCreated) contacts created, \(summary.contactsAdopted) adopted, "
                + "\(summary.contactsUpdated) updated, \(summary.conflicts) in conflict, "
                + "\(summary.messagesSent) messages sent, \(summary.notesAdded) notes, \(summary.taggings) taggings, "
                + "\(summary.contactsArchived) archived or unarchived, \(summary.contactsDeleted) deleted, "
                + "\(summary.failed) failed, "
                + "\(summary.unknown) unknown, "
                + "\(summary.deferred) deferred, \(summary.blocked) waiting for a create"
        ]
        if !summary.interrupted.isEmpty {
            lines.append(
                "marked unknown (a previous flush stopped while sending them): "
                    + summary.interrupted.map { "#\($0)" }.joined(separator: ", "))
        }
        lines.append(
            "\(summary.requests) requests, \(summary.rateLimited) rate-limited (429), \(summary.retries) retries, "
                + String(format: "%.1f s", summary.duration))
        return lines.joined(separator: "\n")
    }

    static func json(_ summary: FlushSummary) -> JSONValue {
        .object([
            "queued": .int(Int64(summary.queued)), "contacts_created": .int(Int64(summary.contactsCreated)),
            "contacts_adopted": .int(Int64(summary.contactsAdopted)), "messages_sent": .int(Int64(summary.messagesSent)),
            "notes_added": .int(Int64(summary.notesAdded)), "contacts_deleted": .int(Int64(summary.contactsDeleted)),
            "contacts_archived": .int(Int64(summary.contactsArchived)),
            "taggings": .int(Int64(summary.taggings)), "contacts_updated": .int(Int64(summary.contactsUpdated)),
            "conflicts": .int(Int64(summary.conflicts)), "conflict_in_outbox": .int(Int64(summary.conflictInOutbox)),
            "failed": .int(Int64(summary.failed)), "unknown": .int(Int64(summary.unknown)),
            "interrupted": .array(summary.interrupted.map { .int($0) }), "deferred": .int(Int64(summary.deferred)),
            "blocked": .int(Int64(summary.blocked)), "stopped_by": summary.stoppedBy.map { .string($0.description) } ?? .null,
            "unreachable": summary.unreachable.map { .string($0.description) } ?? .null,
            "pending_in_outbox": .int(Int64(summary.pendingInOutbox)),
            "requests": .int(Int64(summary.requests)), "rate_limited": .int(Int64(summary.rateLimited)),
            "retries": .int(Int64(summary.retries)), "duration_seconds": .double(summary.duration),
            "failed_in_outbox": .int(Int64(summary.failedInOutbox)), "unknown_in_outbox": .int(Int64(summary.unknownInOutbox)),
        ])
    }
}
