import ArgumentParser
import Foundation
import IntercomSync
import IntercomSyncTeam
import Synchronization

struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Bring the mirror in step with Intercom.",
        discussion: """
            The first sync pulls every contact (GET /contacts, 150 a page). Later ones pull what \
            changed since the last (POST /contacts/search on updated_at, with a two-day margin). \
            Each page commits with its cursor: a sync that was stopped resumes where it stopped. \
            Deletions, archives and merges only show in a full walk: run --reconcile now and then. \
            Every sync also reads the tag and segment lists, the companies (all of them on a full \
            pull), and the whole tag or company list of a contact whose body lists only some; \
            --segments also keeps segment memberships. \
            One sync or flush runs at a time per mirror; queries keep working meanwhile.

            Safety: the first sync records the workspace (from GET /me) and the API host; a \
            later sync against another is refused unless you pass --rebind. A full walk that \
            would tombstone more than a fifth of the mirror (or all of it) stops before \
            tombstoning anything and asks for --allow-mass-delete. A server that does not \
            answer is given up after two --timeout periods a request (exit 4).

            With --upstream (or INTERCOM_SYNC_UPSTREAM), the mirror follows a team's store in \
            PostgreSQL instead of Intercom: it reads the contacts that changed there since the \
            last change it applied, with no request to Intercom and no Intercom token. Give the \
            password in PGPASSWORD rather than in the URL, which other users can read in `ps`. \
            The mirror remembers it: later syncs follow it, and `outbox flush` pushes to it.

            With --store (or INTERCOM_SYNC_STORE), this sync pulls for a team: it runs into its \
            own mirror (--db) as any sync does, and publishes what it changes (contacts, their \
            tags, companies and segments, deletions) into the team's store as it goes, where \
            agents follow it. One puller at a time per store: another exits 5 naming the one that pulls, or \
            waits with --wait. A restarted PostgreSQL costs a retry: the puller takes its place again, or \
            exits 5 if another took it meanwhile, its progress kept for the next run.

            Examples:
              export INTERCOM_ACCESS_TOKEN=…
              intercom-sync sync
              intercom-sync sync --reconcile --json
              # against `intercom-sync sim`:
              intercom-sync sync --full --base-url http://127.0.0.1:8080
              # from a team's store (the password in PGPASSWORD):
              intercom-sync sync --upstream postgres://agent@db.example.com/support
              # the team's puller:
              intercom-sync sync --store postgres://puller@db.example.com/support
            """
    )

    @OptionGroup var mirror: MirrorOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var wait: WaitOption

    @Flag(help: "Walk every contact again (resuming a walk that was stopped) and tombstone the missing.")
    var full = false

    @Flag(help: "Pull what changed, then walk every contact to find deletions, archives and merges.")
    var reconcile = false

    @Flag(
        help:
            "Sync even though the server is another workspace or API host than the mirror's (a new workspace is then walked in full)."
    )
    var rebind = false

    @Flag(
        name: .customLong("allow-mass-delete"),
        help: "Let a full walk tombstone more than a fifth of the mirror (it stops and asks otherwise).")
    var allowMassDelete = false

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "The most requests in flight at once (1-128). Above 1 a full pull, and an incremental one of more than 4 pages, walk ranges of created_at by search in parallel: this many in flight, halved on 429s, 5xx or timeouts and grown back by one a round trip; 1 walks one cursor.",
            valueName: "n"))
    var concurrency = IntercomMirror.Configuration().syncConcurrency

    @Option(
        name: .customLong("max-rate"), parsing: .unconditional,
        help: ArgumentHelp(
            "The share of Intercom's rate limit this sync may use (0.01-1), leaving the rest to a flush and the workspace's other apps.",
            valueName: "share"))
    var maxRate = 1.0

    @Flag(
        help:
            "Also keep segment memberships, from now on at every sync: a search page per 150 members of each segment.")
    var segments = false

    @Flag(name: .customLong("no-segments"), help: "Stop keeping segment memberships (and drop them).")
    var noSegments = false

    @Option(
        help: ArgumentHelp(
            "Follow a team's store instead of Intercom (default: $INTERCOM_SYNC_UPSTREAM).", valueName: "postgres-url"))
    var upstream: String?

    @Option(
        help: ArgumentHelp(
            "Pull for a team: publish what the sync changed into this store (default: $INTERCOM_SYNC_STORE).",
            valueName: "postgres-url"))
    var store: String?

    @Flag(help: "Print the summary as one JSON object.")
    var json = false

    /// The team store to follow, when one is given.
    func upstreamURL(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> TeamStoreURL? {
        try TeamStoreAccess.url(upstream, variable: "INTERCOM_SYNC_UPSTREAM", environment: environment)
    }

    func validate() throws {
        if segments && noSegments { throw ValidationError("--segments and --no-segments cannot be combined") }
        if full && reconcile { throw ValidationError("--full and --reconcile cannot be combined") }
        guard (0.01...1).contains(maxRate) else { throw ValidationError("--max-rate must be between 0.01 and 1, not \(maxRate)") }
        guard (1...128).contains(concurrency) else {
            throw ValidationError("--concurrency must be between 1 and 128, not \(concurrency)")
        }
    }

    func run() async throws {
        if let url = try TeamStoreAccess.url(store, variable: "INTERCOM_SYNC_STORE") {
            if upstream != nil { throw ValidationError("--store pulls for a team and --upstream follows one: give one of them") }
            try await pull(for: url)
            return
        }
        if let url = try await upstreamToFollow() {
            try await follow(url)
            return
        }
        _ = try await pullIntercom()
    }

    /// Pulls from Intercom into the mirror, printing the summary; answers the mirror and the
    /// summary.
    func pullIntercom(printing: Bool = true) async throws -> (IntercomMirror, SyncSummary) {
        let mirror = try await openForPull()
        return (mirror, try await pull(mirror, printing: printing))
    }

    /// The mirror, connected to Intercom as this sync's options say.
    func openForPull() async throws -> IntercomMirror {
        let intercom = try connection.intercomConnection()
        return try await self.mirror.facade(
            .createIfMissing, connection: intercom,
            configuration: connection.configured(
                IntercomMirror.Configuration(
                    syncConcurrency: concurrency, lockWait: .seconds(wait.seconds), rateShare: maxRate)))
    }

    /// Pulls from Intercom into `mirror`, printing the summary unless told not to.
    func pull(_ mirror: IntercomMirror, printing: Bool = true) async throws -> SyncSummary {
        if segments || noSegments { try await mirror.keepSegmentMemberships(segments) }
        let progress = SyncProgressDisplay(share: maxRate)
        let summary = try await mirror.sync(
            full ? .full : (reconcile ? .reconcile : .automatic),
            safety: SyncSafety(rebind: rebind, allowMassDelete: allowMassDelete)
        ) { progress.show($0) }
        progress.finish()
        if printing {
            if json { Output.data(Self.json(summary).jsonText) } else { Output.line(Self.text(summary)) }
        }
        Self.warnOfMalformed(summary.malformed)
        return summary
    }

    /// `sync --store`: the team's puller. Holds the store's puller lock, pulls into its own
    /// mirror, and publishes what the pull changes into the store as it goes.
    func pull(for url: TeamStoreURL) async throws {
        if let followed = try await Self.recordedUpstream(of: self.mirror) {
            Output.note(
                "error: this mirror follows the team store \(followed): it is an agent's, and the puller needs a "
                    + "mirror of its own, pulled from Intercom. Nothing was changed: pass another --db")
            throw ExitCode.failure
        }
        // A restarted PostgreSQL costs a retry, not the pull.
        let team = try await TeamStoreAccess.open(url, patience: .seconds(30))
        defer { Task { await team.close() } }
        let lease: PullerLease
        do {
            lease = try await team.holdPuller(
                as: "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)", waiting: wait.seconds)
        } catch let error as TeamStoreError where error.kind == .busy {
            Output.note("error: \(error.description)")
            throw ExitCode(5)
        }
        // A restarted PostgreSQL frees the place: the lease takes it again, and if another
        // puller was quicker, this one stops as a killed one would, and resumes the same way.
        let mirrorPath = self.mirror.resolvedPath
        lease.keep { holder in
            Output.note(
                "error: the team store \(url) lost this puller's place while its connection was down, and "
                    + "\(holder) took it: this pull stops here. Its progress is kept in \(mirrorPath) for the next "
                    + "`sync --store`")
            Foundation.exit(5)
        }
        let mirror = try await openForPull()
        let summary: SyncSummary
        let published: (contacts: Int, changed: Int)
        do {
            let command = self
            let run = try await team.publishing(from: mirror, rebind: rebind) {
                try await command.pull(mirror, printing: !command.json)
            }
            summary = run.result
            published = (run.contacts, run.changed)
        } catch let error as TeamStoreError where error.kind == .unreachable {
            Output.note(
                "error: \(error.description)\nthe pull is kept in \(self.mirror.resolvedPath): the next `sync --store` publishes it"
            )
            throw ExitCode(4)
        }
        await lease.release()
        if json {
            guard case .object(var fields) = Self.json(summary) else { return }
            fields["store"] = .string(url.description)
            fields["published"] = .int(Int64(published.contacts))
            fields["store_changes"] = .int(Int64(published.changed))
            Output.data(JSONValue.object(fields).jsonText)
        } else {
            Output.line(
                "published \(published.contacts) contacts to the team store at \(url): \(published.changed) changed it")
        }
    }

    /// `sync --upstream`: the mirror follows the team's store; Intercom is not asked.
    func follow(_ url: TeamStoreURL) async throws {
        if full || reconcile || segments || noSegments {
            throw ValidationError("--upstream follows the team's store: --full, --reconcile and --segments are the puller's")
        }
        // A mirror's change number counts the changes of the store it followed: another
        // store's numbers mean nothing to it.
        if let recorded = try await Self.recordedUpstream(of: self.mirror), !Self.sameStore(recorded, url) {
            Output.note(
                "error: this mirror follows the team store \(recorded), not \(url): it cannot follow another store. "
                    + "Nothing was changed: follow \(url) with a new mirror (--db)")
            throw ExitCode.failure
        }
        // A store that restarts is back within seconds; one that stays away is said so soon.
        // The store first: a mirror is made only once there is a store to follow.
        let store = try await TeamStoreAccess.open(url, patience: .seconds(5), creating: false)
        defer { Task { await store.close() } }
        let mirror = try await self.mirror.facade(
            .createIfMissing, configuration: IntercomMirror.Configuration(lockWait: .seconds(wait.seconds)))
        let started = ContinuousClock.now
        let followed = try await mirror.follow(store)
        var bare = url
        bare.password = nil
        try await mirror.recordUpstream(bare.description)
        let seconds = Double((ContinuousClock.now - started) / .milliseconds(1)) / 1000
        if json {
            Output.data(
                JSONValue.object([
                    "upstream": .string(url.description), "changes": .int(Int64(followed.changes)),
                    "stored": .int(Int64(followed.stored)), "change": .int(followed.change),
                    "outcomes": .int(Int64(followed.outcomes)), "duration_seconds": .double(seconds),
                ]).jsonText)
        } else {
            let outcomes =
                followed.outcomes == 0
                ? "" : ", \(followed.outcomes) pushed entr\(followed.outcomes == 1 ? "y" : "ies") settled"
            Output.line(
                "followed \(url): \(followed.changes) changes, \(followed.stored) contacts stored\(outcomes), now at change "
                    + "\(followed.change) (\(String(format: "%.1f", seconds)) s, no request to Intercom)")
        }
    }

    /// The team store to follow: the one given, else the one the mirror followed last.
    func upstreamToFollow() async throws -> TeamStoreURL? {
        if let url = try upstreamURL() { return url }
        return try await Self.recordedUpstream(of: mirror)
    }

    /// The team store a mirror followed last (`sync --upstream` records it), with the password
    /// from PGPASSWORD; nil for a mirror of Intercom, or none yet.
    /// Whether two URLs name the same store: the same server and database, whoever logs in.
    static func sameStore(_ one: TeamStoreURL, _ other: TeamStoreURL) -> Bool {
        one.host.lowercased() == other.host.lowercased() && one.port == other.port && one.database == other.database
            && one.socketFolder == other.socketFolder
    }

    static func recordedUpstream(
        of mirror: MirrorOptions, environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> TeamStoreURL? {
        guard FileManager.default.fileExists(atPath: mirror.resolvedPath) else { return nil }
        let recorded: String?
        do {
            recorded = try await mirror.facade(.existing).recordedUpstream()
        } catch let error as MirrorError where error.kind == .missingMirror {
            // An empty file (a first sync killed as it created it) is no mirror yet.
            return nil
        }
        guard let recorded else { return nil }
        return try TeamStoreAccess.url(recorded, variable: "", environment: environment)
    }

    /// On stderr: the contacts Intercom sent that the mirror could not store, at most ten by
    /// name. They are left out of the mirror until Intercom sends them in a form it can store;
    /// every full pull asks for them again.
    static func warnOfMalformed(_ malformed: [MalformedContact]) {
        guard !malformed.isEmpty else { return }
        Output.note(
            "warning: \(malformed.count) contact\(malformed.count == 1 ? "" : "s") from Intercom could not be stored "
                + "and \(malformed.count == 1 ? "was" : "were") left out of the mirror (the rest of each page was stored):")
        for contact in malformed.prefix(10) {
            Output.note("  \(contact.id ?? "(no id)"): \(contact.reason)")
        }
        if malformed.count > 10 { Output.note("  … and \(malformed.count - 10) more (sync --json lists them all)") }
    }

    static func text(_ summary: SyncSummary) -> String {
        let passes = summary.passes.map(\.rawValue).joined(separator: " + ") + (summary.resumed ? " (resumed)" : "")
        var lines = [
            "\(passes) pull: \(summary.fetched) contacts fetched, \(summary.written) written, \(summary.tombstoned) tombstoned",
            "\(summary.requests) requests, \(summary.rateLimited) rate-limited (429), \(summary.retries) retries, "
                + String(format: "%.1f s", summary.duration),
        ]
        if summary.ranges > 0 {
            lines.append(
                "the full walk was partitioned into \(summary.ranges) range\(summary.ranges == 1 ? "" : "s") of created_at")
        }
        if summary.concurrencyBackoffs > 0 {
            lines.append(
                "Intercom showed distress (429, 5xx or timeouts): requests in flight were halved "
                    + "\(summary.concurrencyBackoffs) time\(summary.concurrencyBackoffs == 1 ? "" : "s") (at most \(summary.peakConcurrency))"
            )
        }
        if summary.incrementalRanges > 0 {
            lines.append("the incremental pass was split into \(summary.incrementalRanges) ranges of created_at")
        }
        if let fallback = summary.fallback { lines.append("the full walk went through the list, one cursor: \(fallback)") }
        if summary.recheckRequests > 0 {
            lines.append(
                "the walk was resumed from an earlier run: caught up from its start, \(summary.recheckRequests) ranges "
                    + "counted against the mirror, \(summary.rewalkedRanges) walked again where contacts had gone")
        }
        lines.append(
            "\(summary.tags) tags, \(summary.segments) segments, \(summary.companies) companies read; "
                + "\(summary.followedLinks) contacts' whole tag or company lists read (\(summary.linkRequests) requests)")
        if summary.proofRequests > 0 {
            lines.append("\(summary.proofRequests) contacts missing from the walk were checked one by one before tombstoning")
        }
        return lines.joined(separator: "\n")
    }

    static func json(_ summary: SyncSummary) -> JSONValue {
        .object([
            "passes": .array(summary.passes.map { .string($0.rawValue) }), "resumed": .bool(summary.resumed),
            "fetched": .int(Int64(summary.fetched)), "written": .int(Int64(summary.written)),
            "tombstoned": .int(Int64(summary.tombstoned)), "requests": .int(Int64(summary.requests)),
            "rate_limited": .int(Int64(summary.rateLimited)), "retries": .int(Int64(summary.retries)),
            "duration_seconds": .double(summary.duration), "deferred_indexing": .bool(summary.deferredIndexing),
            "ranges": .int(Int64(summary.ranges)), "fallback": summary.fallback.map(JSONValue.string) ?? .null,
            "plan_requests": .int(Int64(summary.planRequests)), "planned_pages": .int(Int64(summary.plannedPages)),
            "proof_requests": .int(Int64(summary.proofRequests)),
            "recheck_requests": .int(Int64(summary.recheckRequests)),
            "rewalked_ranges": .int(Int64(summary.rewalkedRanges)),
            "incremental_ranges": .int(Int64(summary.incrementalRanges)),
            "concurrency_backoffs": .int(Int64(summary.concurrencyBackoffs)),
            "peak_concurrency": .int(Int64(summary.peakConcurrency)),
            "tags": .int(Int64(summary.tags)), "segments": .int(Int64(summary.segments)),
            "companies": .int(Int64(summary.companies)), "followed_links": .int(Int64(summary.followedLinks)),
            "link_requests": .int(Int64(summary.linkRequests)),
            "malformed": .array(
                summary.malformed.map {
                    .object(["id": $0.id.map(JSONValue.string) ?? .null, "reason": .string($0.reason)])
                }),
        ])
    }
}

/// One progress bar per pass, fed from the sync's progress callbacks.
/// Beside the contacts done and the ETA, each bar shows the requests a second against the
/// budget the rate limit allows this sync (its share of Intercom's window), so a slow pull shows
/// whether the limit or the round trip holds it back.
final class SyncProgressDisplay: Sendable {
    private let state = Mutex<(pass: SyncSummary.Pass?, bar: ProgressBar?, started: Date, requests: Int)>(
        (nil, nil, Date(), 0))
    private let share: Double

    /// `share` is the part of each window this sync may spend (`--max-rate`).
    init(share: Double = 1) {
        self.share = share
    }

    /// `48 req/s of 50/s`, over the pass so far.
    private func budgetText(_ progress: SyncProgress, since started: Date, requestsAtStart: Int) -> String? {
        let seconds = Date().timeIntervalSince(started)
        guard seconds >= 0.05 else { return nil }
        let rate = Double(progress.requests - requestsAtStart) / seconds
        guard let window = progress.rateLimit else { return String(format: "%.0f req/s", rate) }
        let budget = Double(window) * share / 10  // Intercom's windows are 10 seconds long.
        return String(format: "%.0f req/s of %.0f/s", rate, budget)
    }

    func show(_ progress: SyncProgress) {
        state.withLock { state in
            if state.pass != progress.pass {
                state.bar?.finish()
                let label = progress.pass == .links ? "contacts' whole tag and company lists" : "\(progress.pass.rawValue) pull"
                state.bar = ProgressBar(label, total: progress.total ?? progress.fetched)
                state.pass = progress.pass
                state.started = Date()
                state.requests = progress.requests
            }
            state.bar?.update(
                progress.fetched, detail: budgetText(progress, since: state.started, requestsAtStart: state.requests))
            if progress.indexing {
                state.bar?.finish()
                Output.note("every page is in; building the indexes of \(progress.fetched) contacts")
            }
        }
    }

    func finish() {
        state.withLock { $0.bar?.finish() }
    }
}
