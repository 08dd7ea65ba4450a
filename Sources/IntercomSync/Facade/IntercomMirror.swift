import Foundation
import Logging

/// An offline mirror of one Intercom workspace's contacts, with an outbox of writes waiting to
/// be pushed: the one type an app needs.
///
/// Reads (``contact(id:)``, ``contacts(matching:)``, ``status()``) never touch the network and
/// work with no connection at all. Writes (``stageContact(_:allowingDuplicateEmail:)``,
/// ``stageMessage(_:)``, ``stageTagging(contact:tags:untag:)``) land in the mirror at once and
/// wait in the outbox for ``flush(rebind:progress:)``. ``sync(_:safety:progress:)`` brings the mirror in step with
/// Intercom. ``observe(_:)`` and ``observeStatus()`` yield again whenever the mirror changes.
///
/// ```swift
/// let connection = IntercomConnection(region: .us, accessToken: token)
/// let mirror = try await IntercomMirror.open(at: path, connection: connection)
/// try await mirror.sync()
/// let leads = try await mirror.contacts(matching: ContactQuery(role: .lead, tags: ["VIP"]))
/// ```
///
/// Sync, flush and import on one `IntercomMirror` take turns: each waits for the one before it,
/// in the order they were called. Another process working on the same file holds a lock that
/// these wait for up to ``Configuration/lockWait``, then fail with ``SyncError``. Queries and
/// staging never wait for either. Every long piece of work runs on the engine's own threads,
/// never on the cooperative pool that an app's tasks share.
public final class IntercomMirror: Sendable {
    /// How a mirror talks to Intercom and paces itself.
    public struct Configuration: Sendable {
        /// Requests a full pull keeps in flight. Intercom's rate limit, not this, sets the pace.
        /// The larger of this and ``flushConcurrency`` bounds the connections to Intercom's host.
        public var syncConcurrency: Int
        /// Outbox entries sent at once by a flush.
        public var flushConcurrency: Int
        /// How long sync, flush and import wait for another process holding the mirror.
        public var lockWait: Duration
        /// How often observers look for commits by other processes (this process's own
        /// commits are seen at once).
        public var observationInterval: Duration
        /// Where the mirror reads the time of day.
        public var clock: WallClock
        /// Whether a connection may send its token over plain `http` to another machine than
        /// this one. Off: anyone on the path could read the token, a key to the whole workspace.
        public var allowsInsecureHTTP: Bool
        /// Called, before it starts, when an open finishes the indexes a load stopped part-way
        /// left to build (seconds for a million contacts), so a person can be told why it waits.
        public var onFinishingLoad: (@Sendable () -> Void)?
        /// Called as an open upgrades a mirror an older version wrote: the contacts done and in
        /// all, once per committed batch (the upgrade resumes where it stopped).
        public var onUpgrade: (@Sendable (_ done: Int, _ total: Int) -> Void)?
        /// The share of each of Intercom's rate-limit windows this mirror's requests may spend
        /// (0.01 to 1): the rest is left to other processes and the workspace's other apps.
        public var rateShare: Double
        /// How long a request keeps waiting while Intercom answers 429 (rate limited) before
        /// it fails with ``IntercomError``; the sync or flush it belonged to resumes at the next
        /// call. Zero waits through none: each 429 then counts as a failed attempt.
        public var rateLimitPatience: Duration
        /// Told, at each 429 a request waits through, how long that request has waited so far:
        /// a wait of minutes should not be silent. Called from the engine's threads, for several
        /// requests at once.
        public var onRateLimitWait: (@Sendable (_ waited: Duration) -> Void)?
        /// Where each exchange with Intercom is logged: method, URL, status and time at
        /// `.info`, the headers too at `.debug`. The access token is shown only as its
        /// fingerprint, and no body is ever logged. Nil: nothing is logged.
        public var logger: Logger?

        public init(
            syncConcurrency: Int = 64, flushConcurrency: Int = 4, lockWait: Duration = .zero,
            observationInterval: Duration = .milliseconds(250), clock: WallClock = .system,
            allowsInsecureHTTP: Bool = false, onFinishingLoad: (@Sendable () -> Void)? = nil,
            onUpgrade: (@Sendable (_ done: Int, _ total: Int) -> Void)? = nil, rateShare: Double = 1,
            rateLimitPatience: Duration = .seconds(600), onRateLimitWait: (@Sendable (_ waited: Duration) -> Void)? = nil,
            logger: Logger? = nil
        ) {
            self.syncConcurrency = syncConcurrency
            self.flushConcurrency = flushConcurrency
            self.lockWait = lockWait
            self.observationInterval = observationInterval
            self.clock = clock
            self.allowsInsecureHTTP = allowsInsecureHTTP
            self.onFinishingLoad = onFinishingLoad
            self.onUpgrade = onUpgrade
            self.rateShare = rateShare
            self.rateLimitPatience = rateLimitPatience
            self.onRateLimitWait = onRateLimitWait
            self.logger = logger
        }
    }

    /// How ``open(at:mode:connection:configuration:)`` treats the file.
    public enum OpenMode: Sendable {
        /// Open the mirror, creating the file if there is none (its folder must exist).
        case createIfMissing
        /// Open an existing mirror; fail with ``MirrorError`` if there is none.
        case existing
        /// Open an existing mirror to read it, never writing: works on a file this user may not
        /// write, or on a read-only medium, and while another process loads it. Writes fail.
        case readOnly
    }

    package let store: ContactMirror
    /// The client every network call shares, so one rate-limit budget paces them all; nil for
    /// a mirror opened without a connection.
    let client: IntercomClient?
    public let configuration: Configuration
    private let turns: TurnQueue

    package convenience init(store: ContactMirror, client: IntercomClient?, configuration: Configuration) {
        self.init(store: store, client: client, configuration: configuration, turns: TurnQueue())
    }

    private init(store: ContactMirror, client: IntercomClient?, configuration: Configuration, turns: TurnQueue) {
        self.store = store
        self.client = client
        self.configuration = configuration
        self.turns = turns
    }

    /// Opens the mirror file at `path`, creating it (its folder must exist) when there is none.
    ///
    /// A mirror written by an older version is upgraded in place; a file that is not a mirror,
    /// or is damaged, is refused with a ``MirrorError`` before anything is written to it.
    /// Without a `connection` the mirror still answers queries and stages writes; ``sync(_:safety:progress:)``,
    /// ``refreshContact(id:)`` and ``flush(rebind:progress:)`` then fail with ``SyncError`` (``SyncError/Kind-swift.struct/notConnected``).
    public static func open(
        at path: String, mode: OpenMode = .createIfMissing, connection: IntercomConnection? = nil,
        configuration: Configuration = Configuration()
    ) async throws -> IntercomMirror {
        let client = try client(for: connection, configuration)
        let storeMode: ContactMirror.OpenMode =
            switch mode {
            case .createIfMissing: .createIfMissing
            case .existing: .existing
            case .readOnly: .readOnly
            }
        let store = try await WorkExecutor.shared.run {
            try ContactMirror.open(
                at: path, mode: storeMode, onFinishingLoad: { configuration.onFinishingLoad?() },
                onUpgrade: { done, total in configuration.onUpgrade?(done, total) })
        }
        return IntercomMirror(store: store, client: client, configuration: configuration)
    }

    /// This mirror, talking to Intercom through `connection`: for an app that opens a mirror
    /// offline, and connects only once it needs Intercom (a token may then be asked for only
    /// when it is needed).
    ///
    /// Both values share the mirror's file and take turns as one: closing either closes both.
    /// Each call makes a new client with a rate-limit budget of its own, so connect once and
    /// keep the value: two connected values would each spend the whole budget.
    public func connecting(to connection: IntercomConnection) throws -> IntercomMirror {
        IntercomMirror(
            store: store, client: try Self.client(for: connection, configuration), configuration: configuration,
            turns: turns)
    }

    /// Whether another process is loading the mirror (its first sync, or a large import) as this
    /// one reads it: what it has committed is answered, and a search finds its contacts once it
    /// ends.
    public var isBeingLoaded: Bool { store.loadInProgress }

    /// The client of `connection`, refusing one that would send its token in clear to
    /// another machine unless the configuration allows it.
    private static func client(for connection: IntercomConnection?, _ configuration: Configuration) throws
        -> IntercomClient?
    {
        guard let connection else { return nil }
        guard IntercomConnection.isUsableToken(connection.accessToken) else {
            throw IntercomError(
                kind: .authentication, status: nil, code: "invalid_token",
                message: "the access token is empty or holds spaces or control characters, which no Intercom token has",
                operation: "connect")
        }
        if IntercomConnection.sendsTokenInClear(to: connection.baseURL), !configuration.allowsInsecureHTTP {
            throw IntercomError(
                kind: .permanent, status: nil, code: "insecure_base_url",
                message: "\(connection.baseURL) is plain http to another machine: the access token would cross the "
                    + "network in clear. Use https, or allow it in the configuration (allowsInsecureHTTP)",
                operation: "connect")
        }
        let patience = configuration.rateLimitPatience.seconds
        let onRateLimitWait: (@Sendable (Double) -> Void)? = configuration.onRateLimitWait.map { notify in
            { @Sendable waited in notify(.milliseconds(Int64(waited * 1000))) }
        }
        return IntercomClient(
            connection: connection,
            // As many connections as the most requests the mirror keeps in flight.
            transport: defaultHTTPTransport(
                timeout: connection.timeout,
                maximumConnectionsPerHost: max(1, configuration.syncConcurrency, configuration.flushConcurrency),
                logger: configuration.logger),
            governor: RateLimitGovernor(share: configuration.rateShare),
            retryPolicy: RetryPolicy(rateLimitPatience: patience),
            onRateLimitWait: onRateLimitWait)
    }

    /// A mirror in memory, gone when the value is: for tests, previews and dry runs.
    public static func inMemory(
        connection: IntercomConnection? = nil, configuration: Configuration = Configuration()
    ) throws -> IntercomMirror {
        IntercomMirror(
            store: try ContactMirror.inMemory(), client: try client(for: connection, configuration),
            configuration: configuration)
    }

    /// The mirror file, or nil for one in memory.
    public var path: String? { store.path }

    /// Closes the mirror's connections; later calls fail.
    public func close() throws {
        try store.close()
    }

    // MARK: Sync

    /// Brings the mirror in step with Intercom and reports what it did.
    ///
    /// `.automatic` resumes an interrupted pull, makes a first full pull, or pulls what changed
    /// since the last one. `progress` is called from the engine's threads as pages are stored.
    @discardableResult
    public func sync(
        _ mode: SyncMode = .automatic, safety: SyncSafety = SyncSafety(),
        progress: (@Sendable (SyncProgress) -> Void)? = nil
    ) async throws -> SyncSummary {
        let client = try connectedClient()
        let engine = ContactSync(
            mirror: store, client: client, now: configuration.clock.secondsSource,
            concurrency: configuration.syncConcurrency, lockWait: configuration.lockWait.seconds)
        let counted = progress.map { report in
            { @Sendable (step: SyncProgress) in
                var step = step
                let counters = client.counters
                step.requests = counters.requests
                step.rateLimit = counters.windowLimit
                report(step)
            }
        }
        return try await turns.run {
            try await WorkExecutor.shared.run { try await engine.run(mode, safety: safety, progress: counted) }
        }
    }

    /// Brings the mirror up to date from an upstream store (a team's) instead of Intercom: the
    /// changes after the last one applied, a page at a time, each page committed with the
    /// change number it reached. No request goes to Intercom, and no connection is needed.
    /// Holds the mirror's lock as a sync does. Answers how many changes were applied, how many
    /// contacts they stored, and the change number reached.
    ///
    /// When the upstream also holds the outbox the mirror pushes to (``OutboxUpstream``), the
    /// outcomes of the entries it pushed are applied first (`outcomes`), so that a contact it
    /// created takes its Intercom id before that contact arrives as a change.
    ///
    /// A mirror pulled from Intercom (bound to a workspace) is refused with
    /// ``SyncError/Kind/foreignWorkspace``: it is not an agent's mirror. So is an upstream whose
    /// ``ContactUpstream/identity()`` is not the one the mirror followed.
    @discardableResult
    public func follow(_ upstream: any ContactUpstream, pageSize: Int = 2_000) async throws -> (
        changes: Int, stored: Int, change: Int64, outcomes: Int
    ) {
        let store = self.store
        let clock = configuration.clock
        return try await holdingLock(purpose: "intercom-sync sync --upstream") {
            // A mirror pulled from Intercom has its own change history: following a store on
            // top of it would mix two workspaces' contacts, and a puller would publish them.
            if let binding = try store.workspaceBinding() {
                throw SyncError(
                    .foreignWorkspace,
                    "this mirror is pulled from Intercom (workspace \(binding.workspaceID) at \(binding.origin)): "
                        + "a mirror that follows a team store is an agent's, of its own. Nothing was changed",
                    remedy: .otherMirror)
            }
            // The change number reached counts this upstream's changes only.
            if let identity = try await upstream.identity() {
                switch try store.syncState(.upstreamIdentity) {
                case nil:
                    try store.setSyncState(.upstreamIdentity, to: identity)
                case identity?:
                    break
                case let followed?:
                    throw SyncError(
                        .foreignWorkspace,
                        "this mirror follows another store than this one (store \(followed), not \(identity)): its "
                            + "position is that store's. Nothing was changed: follow this store with a new mirror",
                        remedy: .otherMirror)
                }
            }
            var outcomes = 0
            if let outbox = upstream as? any OutboxUpstream, try store.syncState(.outboxOrigin) != nil {
                let origin = try store.outboxOrigin()
                var reached = try store.upstreamOutcomeChange()
                while true {
                    let page = try await outbox.outcomes(of: origin, since: reached, limit: max(1, pageSize))
                    guard let last = page.last else { break }
                    outcomes += try await store.applyOutcomes(page, now: clock.unixSeconds)
                    reached = last.change
                }
            }
            var applied = 0
            var stored = 0
            var change = try store.upstreamChange()
            // Each next page is read from the upstream, and its bodies read, while the current
            // one is written.
            func read(after change: Int64) -> Task<ContactMirror.UpstreamPage, any Error> {
                Task { try ContactMirror.UpstreamPage(await upstream.contactChanges(since: change, limit: max(1, pageSize))) }
            }
            func walk() async throws {
                var next = read(after: change)
                defer { next.cancel() }
                while true {
                    let page = try await next.value
                    guard let last = page.changes.last else { return }
                    next = read(after: last.change)
                    stored += try await store.applyUpstream(page, fetchedAt: clock.unixSeconds).written
                    applied += page.changes.count
                    change = last.change
                }
            }
            // A first catch-up brings the whole workspace: its indexing waits for its end,
            // as a first pull's does.
            if change == 0 {
                try await store.bulkLoading { try await walk() }
            } else {
                try await walk()
            }
            if let (directory, reached) = try await upstream.directory(), reached != (try store.upstreamDirectoryChange()) {
                try await store.applyDirectory(directory, change: reached)
            }
            return (applied, stored, change, outcomes)
        }
    }

    /// Runs `work` in the mirror's turn, on the work executor, holding the mirror's lock as a
    /// sync or flush does (waiting for it as configured).
    private func holdingLock<T: Sendable>(purpose: String, _ work: @escaping @Sendable () async throws -> T)
        async throws -> T
    {
        let store = self.store
        let lockWait = configuration.lockWait.seconds
        return try await turns.run {
            try await WorkExecutor.shared.run {
                let lock = try await MirrorLock.acquire(store, purpose: purpose, waiting: lockWait)
                defer { withExtendedLifetime(lock) {} }
                return try await work()
            }
        }
    }

    /// Pushes the outbox's pending entries to `upstream`'s outbox (a team's, whose flush
    /// workers send them), a page at a time, each page marked `pushed` once the upstream took
    /// it. A push repeated after a lost answer adds nothing upstream. Holds the mirror's lock
    /// as a flush does. Answers how many entries were pushed.
    public func push(to upstream: any OutboxUpstream, pageSize: Int = 500) async throws -> Int {
        let store = self.store
        let clock = configuration.clock
        return try await holdingLock(purpose: "intercom-sync outbox flush") {
            // Entries a flush of the mirror's own left in flight are settled first, as a
            // flush would settle them.
            _ = try await store.beginFlush(now: clock.unixSeconds)
            let origin = try store.outboxOrigin()
            var pushed = 0
            var after: Int64 = 0
            while true {
                let page = try await store.entriesToPush(after: after, limit: max(1, pageSize), now: clock.unixSeconds)
                guard let last = page.last else { break }
                after = last
                guard !page.entries.isEmpty else { continue }
                _ = try await upstream.push(page.entries, from: origin, now: clock.unixSeconds)
                try await store.markPushed(page.entries.map(\.originSeq), now: clock.unixSeconds)
                pushed += page.entries.count
            }
            return pushed
        }
    }

    /// The upstream store the mirror follows and pushes its outbox to, as recorded by the
    /// last `sync --upstream` (a URL without its password); nil for a mirror of Intercom.
    public func recordedUpstream() async throws -> String? {
        let store = self.store
        return try await WorkExecutor.shared.run { try store.recordedUpstream() }
    }

    /// Records the upstream store the mirror follows (a URL without its password).
    public func recordUpstream(_ url: String) async throws {
        let store = self.store
        try await WorkExecutor.shared.run { try store.recordUpstream(url) }
    }

    /// Sends what the outbox holds, in order, exactly once, and reports what happened to it.
    ///
    /// Intercom's refusals do not throw: they end up in the entries and the summary
    /// (``FlushSummary/stoppedBy`` when the token was refused, ``FlushSummary/unreachable``
    /// when Intercom could not be reached).
    @discardableResult
    public func flush(rebind: Bool = false, progress: (@Sendable (FlushProgress) -> Void)? = nil) async throws
        -> FlushSummary
    {
        let client = try connectedClient()
        let engine = OutboxFlush(
            mirror: store, client: client, concurrency: configuration.flushConcurrency,
            now: configuration.clock.secondsSource)
        let lockWait = configuration.lockWait.seconds
        return try await turns.run {
            try await WorkExecutor.shared.run {
                try await engine.run(rebind: rebind, lockWait: lockWait, progress: progress)
            }
        }
    }

    /// Flushes an outbox held by another store than a mirror (a team's, which flush workers on
    /// several machines share) through a client set up as a mirror's would be.
    package static func flush(
        _ store: any OutboxStore, connection: IntercomConnection, configuration: Configuration = Configuration(),
        sharedBudget: (any SharedRateBudget)? = nil, rebind: Bool = false,
        progress: (@Sendable (FlushProgress) -> Void)? = nil
    ) async throws -> FlushSummary {
        guard let client = try client(for: connection, configuration) else {
            throw SyncError(.notConnected, "a flush needs a connection to Intercom", remedy: .connect)
        }
        let engine = OutboxFlush(
            store: store, client: client, concurrency: configuration.flushConcurrency,
            now: configuration.clock.secondsSource)
        let lockWait = configuration.lockWait.seconds
        guard let sharedBudget else { return try await engine.run(rebind: rebind, lockWait: lockWait, progress: progress) }
        // The common budget is learnt before the first request, then exchanged five times a
        // second while the flush runs; a budget that cannot be reached leaves Intercom's own
        // answers to pace the flush.
        let governor = client.governor
        if let shared = try? await sharedBudget.exchange(nil) { await governor.adopt(shared) }
        let exchanging = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                if let shared = try? await sharedBudget.exchange(await governor.confirmedBudget) {
                    await governor.adopt(shared)
                }
            }
        }
        let summary: FlushSummary
        do {
            summary = try await engine.run(rebind: rebind, lockWait: lockWait, progress: progress)
        } catch {
            exchanging.cancel()
            await exchanging.value
            throw error
        }
        exchanging.cancel()
        await exchanging.value
        return summary
    }

    // MARK: Reads

    /// The contact with this Intercom id or local id, from the mirror alone: nil when the
    /// mirror does not have it. Works offline and without a connection.
    public func contact(id: String) async throws -> StoredContact? {
        let store = self.store
        return try await WorkExecutor.shared.run { try store.contact(id: id) }
    }

    /// The contact as Intercom has it now: revalidated with the stored ETag (a 304 costs no
    /// body), fetched when the mirror lacks it, stored either way. When Intercom cannot be
    /// reached the answer is the mirror's version, with ``ContactAnswer/Source-swift.enum/offline``.
    public func refreshContact(id: String) async throws -> ContactAnswer {
        try await contact(id: id, freshness: .refresh)
    }

    /// The contact with this Intercom id or local id, as fresh as `freshness` asks: from the
    /// mirror alone (`.offline`), from the mirror unless it lacks the contact (`.cached`),
    /// revalidated with Intercom (`.refresh`), or revalidated when last confirmed longer ago
    /// than an age (`.maximumAge`). Needs a connection only when Intercom must be asked.
    public func contact(id: String, freshness: ContactFreshness) async throws -> ContactAnswer {
        let store = self.store
        let now = configuration.clock.unixSeconds
        let fromMirror = try await WorkExecutor.shared.run {
            ContactSync.mirrorAnswer(try store.contact(id: id), freshness: freshness, at: now)
        }
        if let fromMirror { return fromMirror }
        let engine = ContactSync(mirror: store, client: try connectedClient(), now: configuration.clock.secondsSource)
        return try await WorkExecutor.shared.run { try await engine.getContact(id, freshness: freshness) }
    }

    /// A contact's notes, from the mirror alone: those written offline and not sent yet, then
    /// those read from Intercom, with how many Intercom holds. A contact's version lists only
    /// its notes' ids: ``contact(id:freshness:)``, when it asks Intercom, also reads the notes
    /// the mirror lacks.
    public func notes(ofContact id: String) async throws -> ContactNotes {
        let store = self.store
        return try await WorkExecutor.shared.run { try store.notes(ofContact: id) }
    }

    /// The fields of a contact edited offline that have not reached Intercom yet, with the
    /// value each had when first edited. The mirror already shows the edited values.
    public func pendingEdits(ofContact id: String) async throws -> [PendingEdit] {
        let store = self.store
        return try await WorkExecutor.shared.run {
            try store.pendingEdits(of: try store.contact(id: id)?.id ?? id).map {
                PendingEdit(field: $0.field, base: $0.base, mine: $0.mine)
            }
        }
    }

    /// The outbox entries of one contact (by Intercom or local id), in queue order: what waits
    /// for it, and what became of what was staged for it.
    public func outbox(ofContact id: String) async throws -> [OutboxEntry] {
        let store = self.store
        return try await WorkExecutor.shared.run { try store.outboxEntries(ofContact: id) }
    }

    /// Which of these contacts (by Intercom or local id) have edits that have not reached
    /// Intercom yet: for marking them in a list.
    public func editedContactIDs(among ids: [String]) async throws -> Set<String> {
        let store = self.store
        return try await WorkExecutor.shared.run { try store.editedContactIDs(among: ids) }
    }

    /// A page of the contacts that match `query`, from the mirror alone.
    public func contacts(matching query: ContactQuery = ContactQuery()) async throws -> ContactPage {
        let store = self.store
        return try await WorkExecutor.shared.run { try store.contacts(matching: query) }
    }

    /// What the mirror holds, what waits in the outbox, when it last synced, and what works on
    /// it now (a sync, an import or a flush, in any process), with a full pull in progress or
    /// interrupted.
    public func status() async throws -> MirrorStatus {
        let store = self.store
        return try await WorkExecutor.shared.run { try store.statusWithActivity() }
    }

    /// The outbox's entries in queue order, `states` only.
    public func outbox(states: Set<OutboxState> = Set(OutboxState.allCases), limit: Int = 1_000) async throws
        -> [OutboxEntry]
    {
        let store = self.store
        return try await WorkExecutor.shared.run { try store.outboxEntries(states: states, limit: limit) }
    }

    /// The workspace's tags, each with how many contacts in the mirror carry it.
    public func tags() async throws -> [TagSummary] {
        let store = self.store
        return try await WorkExecutor.shared.run { try store.tags() }
    }

    /// The workspace's segments, each with how many contacts in the mirror are in it (counted
    /// only once ``keepSegmentMemberships(_:)`` turned memberships on).
    public func segments() async throws -> [SegmentSummary] {
        let store = self.store
        return try await WorkExecutor.shared.run { try store.segments() }
    }

    /// The workspace's companies, those whose name starts a word with `search` when given, at
    /// most `limit` of them, each with its number of contacts.
    public func companies(search: String? = nil, limit: Int = 1_000) async throws -> [CompanySummary] {
        let store = self.store
        return try await WorkExecutor.shared.run { try store.companies(search: search, limit: limit) }
    }

    /// Whether syncs keep which contacts are in which segment. Off by default: Intercom lists a
    /// segment's members only by searching each segment, a request per 150 members at every
    /// sync. Turning it off drops the memberships kept so far.
    public func keepSegmentMemberships(_ keep: Bool) async throws {
        let store = self.store
        try await WorkExecutor.shared.run { try store.keepSegmentMembers(keep) }
    }

    /// Whether syncs keep segment memberships (``keepSegmentMemberships(_:)``): without them a
    /// query by segment finds nothing.
    public func keepsSegmentMemberships() async throws -> Bool {
        let store = self.store
        return try await WorkExecutor.shared.run { try store.keepsSegmentMembers() }
    }

    /// The tag, company and segment names `query` filters by that the mirror does not know,
    /// each as "tag NAME", "company NAME" or "segment NAME": a query by them finds nothing, and
    /// a person probably mistyped one.
    public func unknownNames(in query: ContactQuery) async throws -> [String] {
        let store = self.store
        return try await WorkExecutor.shared.run { try store.unknownLinkNames(in: query) }
    }

    /// The tags, companies and segments of a contact, by its Intercom or local id.
    public func links(ofContact id: String) async throws -> ContactLinks {
        let store = self.store
        return try await WorkExecutor.shared.run { try store.links(ofContact: id) }
    }

    // MARK: Writes

    /// Writes a new contact to the mirror at once, as `pending`, and queues its create.
    ///
    /// The contact can be queried, messaged and tagged straight away by its local id; the
    /// next ``flush(rebind:progress:)`` creates it on Intercom, once. A draft with an email another contact
    /// has is refused unless `allowingDuplicateEmail`.
    @discardableResult
    public func stageContact(_ draft: ContactDraft, allowingDuplicateEmail: Bool = false) async throws
        -> StagedContact
    {
        let store = self.store
        let now = configuration.clock.unixSeconds
        return try await WorkExecutor.shared.run {
            try store.stageContact(draft, allowingDuplicateEmail: allowingDuplicateEmail, now: now)
        }
    }

    /// Queues a message for the next ``flush(rebind:progress:)``, which sends it exactly once.
    @discardableResult
    public func stageMessage(_ draft: MessageDraft) async throws -> StagedMessage {
        let store = self.store
        let now = configuration.clock.unixSeconds
        return try await WorkExecutor.shared.run { try store.stageMessage(draft, now: now) }
    }

    /// Tags (or with `untag`, untags) a contact by name: the mirror shows it at once, and the
    /// next ``flush(rebind:progress:)`` applies it on Intercom.
    @discardableResult
    public func stageTagging(contact: String, tags: [String], untag: Bool = false) async throws -> StagedTagging {
        let store = self.store
        let now = configuration.clock.unixSeconds
        return try await WorkExecutor.shared.run {
            try store.stageTagging(contact: contact, tags: tags, untag: untag, now: now)
        }
    }

    /// Changes fields of a contact (by Intercom id, local id or email) offline: the mirror shows
    /// the new values at once, and the next ``flush(rebind:progress:)`` merges them, field by
    /// field, with what changed on Intercom meanwhile. A field changed on both sides is sent by
    /// neither: its entry waits in ``OutboxState/conflict`` for ``resolve(seq:keep:field:)``.
    /// Several edits of a contact before a flush make one entry; an edit of a contact not
    /// pushed yet goes into its create. The patch is checked as a create is (``DraftError``).
    @discardableResult
    public func stageEdit(_ patch: ContactPatch, to contact: String) async throws -> StagedEdit {
        let store = self.store
        let now = configuration.clock.unixSeconds
        return try await WorkExecutor.shared.run { try store.stageEdit(patch, to: contact, now: now) }
    }

    /// Queues a note on a contact (by Intercom id, local id or email), written by `adminID` or,
    /// without one, by the token's admin; HTML is kept as Intercom keeps it. The next
    /// ``flush(rebind:progress:)`` writes it at most once, after the contact's create when it
    /// was made offline. An empty note, or one of more than 65,536 characters, is refused
    /// (``DraftError``).
    @discardableResult
    public func stageNote(_ body: String, to contact: String, adminID: String? = nil) async throws -> StagedNote {
        let store = self.store
        let now = configuration.clock.unixSeconds
        return try await WorkExecutor.shared.run { try store.stageNote(body, to: contact, adminID: adminID, now: now) }
    }

    /// Deletes a contact (by Intercom id or email) offline: it leaves the mirror's answers at
    /// once, and the next ``flush(rebind:progress:)`` deletes it on Intercom, after whatever was
    /// staged for it before. A delete wins over the contact's edits, whose entries fail with
    /// why; no pull brings the contact back while the delete waits, and dropping the entry
    /// (``dropEntry(seq:cascade:)``) does. A contact not pushed yet is refused: drop its create.
    @discardableResult
    public func stageDelete(contact: String) async throws -> StagedDelete {
        let store = self.store
        let now = configuration.clock.unixSeconds
        return try await WorkExecutor.shared.run { try store.stageDelete(contact: contact, now: now) }
    }

    /// Archives a contact (by Intercom id or email) offline, or with `unarchive` unarchives
    /// one: an archived contact leaves the mirror's answers at once, as Intercom hides it
    /// (``ContactQuery/archivedOnly`` finds it), and an unarchived one shows again. The next
    /// ``flush(rebind:progress:)`` applies it on Intercom, after whatever was staged for the
    /// contact before. Unarchiving a contact whose archive was not sent yet takes it back.
    @discardableResult
    public func stageArchive(contact: String, unarchive: Bool = false) async throws -> StagedArchive {
        let store = self.store
        let now = configuration.clock.unixSeconds
        return try await WorkExecutor.shared.run { try store.stageArchive(contact: contact, archive: !unarchive, now: now) }
    }

    /// The edits that met a change of the same field on Intercom, each field with its three
    /// values: when it was edited, the edit, and Intercom's.
    public func conflicts() async throws -> [EditConflict] {
        let store = self.store
        return try await WorkExecutor.shared.run { try store.editConflicts() }
    }

    /// Settles the conflict of entry `seq`, for one `field` or all of them: ``ConflictChoice/mine``
    /// queues the edit again for the next flush, over Intercom's value; ``ConflictChoice/theirs``
    /// drops it and shows Intercom's value. Returns what waits to be sent for the contact.
    @discardableResult
    public func resolve(seq: Int64, keep choice: ConflictChoice, field: ContactField? = nil) async throws -> StagedEdit {
        let store = self.store
        let now = configuration.clock.unixSeconds
        return try await WorkExecutor.shared.run {
            try store.resolveConflict(seq: seq, keep: choice, field: field, now: now)
        }
    }

    /// Imports the contacts of a CSV file into the mirror as `pending`, for the next
    /// ``flush(rebind:progress:)`` to create. Rows that cannot be imported are counted in the
    /// summary by why; `onRejected` hears each one, with the file's header (an error it throws
    /// stops the import, keeping the batches committed before it).
    @discardableResult
    public func importCSV(
        from file: URL, options: CSVImportOptions = CSVImportOptions(),
        progress: (@Sendable (CSVImportProgress) -> Void)? = nil,
        onRejected: (@Sendable (CSVImportRejection, _ header: [String]) throws -> Void)? = nil
    ) async throws -> CSVImportSummary {
        var options = options
        options.lockWait = configuration.lockWait.seconds
        var delimiter: UInt8?
        if let character = options.delimiter {
            guard let byte = character.asciiValue, [",", ";", "\t", "|"].contains(character) else {
                throw ImportError(.badHeader, "the delimiter must be one of , ; tab |, not \(character)")
            }
            delimiter = byte
        }
        let store = self.store
        let now = configuration.clock.unixSeconds
        return try await turns.run {
            try await WorkExecutor.shared.run { [options, delimiter] in
                var options = options
                let descriptor = Foundation.open(file.path, O_RDONLY | O_CLOEXEC)
                guard descriptor >= 0 else {
                    throw ImportError(.unreadableFile, "cannot open \(file.path): \(String(cString: strerror(errno)))")
                }
                defer { Foundation.close(descriptor) }
                var status = stat()
                if options.expectedBytes == nil, fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG {
                    options.expectedBytes = Int(status.st_size)
                }
                var reader =
                    options.encoding == .windows1252
                    ? CSVReader(
                        delimiter: delimiter,
                        source: CSVReader.decodingWindows1252(CSVReader.reading(fileDescriptor: descriptor)))
                    : CSVReader(fileDescriptor: descriptor, delimiter: delimiter)
                return try ContactImport(mirror: store, options: options).run(
                    &reader, now: now, onRejected: { rejection, header in try onRejected?(rejection, header) },
                    onProgress: { progress?($0) })
            }
        }
    }

    /// Puts a failed or unknown entry back in the queue, for the next ``flush(rebind:progress:)`` to send.
    ///
    /// For an ``OutboxState/unknown`` message this is a person's decision that it did not
    /// reach its recipient: it may be delivered twice.
    public func retryEntry(seq: Int64) async throws {
        let store = self.store
        let now = configuration.clock.unixSeconds
        try await WorkExecutor.shared.run { try store.retryOutboxEntry(seq: seq, now: now) }
    }

    /// Puts every ``OutboxState/unknown`` entry back in the queue: a person's decision that
    /// none reached its recipient. Returns the entries queued again.
    @discardableResult
    public func retryUnknownEntries() async throws -> [Int64] {
        let store = self.store
        let now = configuration.clock.unixSeconds
        return try await WorkExecutor.shared.run { try store.retryUnknownOutboxEntries(now: now) }
    }

    /// Removes an entry that has not been sent, with the entries that wait for it when
    /// `cascade` (else those refuse it); a contact created offline goes with its create.
    @discardableResult
    public func dropEntry(seq: Int64, cascade: Bool = false) async throws -> DroppedEntries {
        let store = self.store
        let now = configuration.clock.unixSeconds
        return try await WorkExecutor.shared.run { try store.dropOutboxEntry(seq: seq, cascade: cascade, now: now) }
    }

    // MARK: Live queries

    /// The first page of `query`'s results now, and again each time the mirror changes in a
    /// way that changes it: a sync or staging in this process, or another process writing the
    /// same file (seen within ``Configuration/observationInterval``).
    ///
    /// The sequence ends when the task iterating it is cancelled, or throws when a read fails.
    public func observe(_ query: ContactQuery) -> AsyncThrowingStream<ContactPage, any Error> {
        observe { store in try store.contacts(matching: query) }
    }

    /// The mirror's status now, and again each time it changes: for a badge of what waits to
    /// be sent or needs attention. Like ``status()``, it says what works on the mirror and
    /// whether a full pull is running or was interrupted.
    public func observeStatus() -> AsyncThrowingStream<MirrorStatus, any Error> {
        observe { store in try store.statusWithActivity() }
    }

    private func observe<Value: Equatable & Sendable>(
        _ read: @escaping @Sendable (ContactMirror) throws -> Value
    ) -> AsyncThrowingStream<Value, any Error> {
        let store = self.store
        let changes = MirrorChanges(mirror: store, pollInterval: configuration.observationInterval)
        return AsyncThrowingStream { continuation in
            let task = Task {
                var last: Value?
                do {
                    for await _ in changes.signals {
                        let value = try await WorkExecutor.shared.run { try read(store) }
                        if value != last {
                            last = value
                            continuation.yield(value)
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in
                task.cancel()
                changes.stop()
            }
        }
    }

    private func connectedClient() throws -> IntercomClient {
        guard let client else {
            throw SyncError(.notConnected, "this mirror was opened without a connection to Intercom", remedy: .connect)
        }
        return client
    }
}

extension Duration {
    /// The duration in seconds, as the engine's parts take waits.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
