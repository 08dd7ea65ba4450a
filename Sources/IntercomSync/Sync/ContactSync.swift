import Foundation

/// Keeps a mirror in step with an Intercom workspace: full pulls, incremental pulls, and
/// `getContact` revalidation. Of the Guarantees article it keeps: a pulled page commits with the
/// cursor after it; pages can be applied again; a pending local write is never overwritten;
/// deletes win; a cached read makes no request; one sync at a time per mirror; a pull never
/// tombstones a contact that exists.
///
///     let sync = ContactSync(mirror: mirror, client: IntercomClient(connection: connection))
///     let summary = try await sync.run()
package final class ContactSync: Sendable {
    package typealias Mode = SyncMode
    package typealias Safety = SyncSafety

    /// The CLI's default `concurrency`. Intercom answers a page in about a second and allows
    /// about 166 requests a second (10,000 a minute); 64 in flight fill 40 % of that at a second
    /// a page and all of it at 0.4 s, for about 15 MB of pages in flight and one connection
    /// each. The governor keeps them inside the budget whatever their number.
    package static let defaultConcurrency = 64

    /// Page size for list and search: Intercom's maximum.
    static let pageSize = 150
    /// The incremental pull's margin below its watermark: stable API versions cut date filters
    /// to whole days in the workspace's timezone.
    static let incrementalMargin = 2 * 86_400

    package let mirror: ContactMirror
    package let client: IntercomClient
    let now: @Sendable () -> Int
    /// A full pull of at least this many contacts, into a mirror holding fewer than half as
    /// many, defers its indexing to its end (`ContactMirror.bulkLoading`).
    let bulkLoadFrom: Int
    /// Requests a full pull keeps in flight: above 1 it walks ranges of `created_at` by search,
    /// several at once (`partitionedWalk`); at 1 it walks the list, one cursor.
    package let concurrency: Int
    /// The most contacts a range of a partitioned pull aims at. Nil (the default) lets a full
    /// pull size its ranges from the server's round trip (`rangeTarget(roundTrip:)`), and an
    /// incremental pass take 20 pages.
    let rangeTarget: Int?
    /// Seconds to wait for another pull, flush or import to release the mirror (0: refuse at once).
    package let lockWait: Double

    package init(
        mirror: ContactMirror, client: IntercomClient,
        now: @escaping @Sendable () -> Int = { Int(Date().timeIntervalSince1970) }, bulkLoadFrom: Int = 20_000,
        concurrency: Int = 1, rangeTarget: Int? = nil, lockWait: Double = 0
    ) {
        self.lockWait = max(0, lockWait)
        self.mirror = mirror
        self.client = client
        self.now = now
        self.bulkLoadFrom = bulkLoadFrom
        self.concurrency = max(1, concurrency)
        self.rangeTarget = rangeTarget.map { max(1, $0) }
    }

    /// Runs the passes `mode` asks for, holding the mirror's lock, after checking that the
    /// server is the mirror's workspace (`WorkspaceBinding`).
    package func run(
        _ mode: Mode = .automatic, safety: Safety = Safety(), progress: (@Sendable (SyncProgress) -> Void)? = nil
    ) async throws -> SyncSummary {
        let lock = try await MirrorLock.acquire(mirror, purpose: MirrorLock.syncPurpose, waiting: lockWait)
        defer { withExtendedLifetime(lock) {} }
        try mirror.finishDeferredIndexingLeftBehind()
        try mirror.relinkStoredContacts()
        let started = Date()
        let before = client.counters
        // A pull that will plan its ranges sends the plan's first requests beside `GET /me`: they
        // only read, and the plan waits for the binding (and the timezone it records) before
        // its counts. A rebind that changes the mirror's state just leaves them unused.
        let opening = try beginsPlannedPull(mode) ? Task { try await self.openPlan() } : nil
        defer { opening?.cancel() }
        try await mirror.bind(to: client.workspaceIdentity(), rebind: safety.rebind)
        // The workspace's lists are read while the pull walks, and written after it: they add
        // no round trip to the end of the pull.
        let lists = Task { try await self.readLists() }
        defer { lists.cancel() }
        var summary = SyncSummary()
        let fullPullInterrupted = try mirror.syncState(.fullPullStartedAt) != nil
        let hasWatermark = try mirror.syncState(.incrementalWatermark) != nil
        switch mode {
        case .automatic where fullPullInterrupted || !hasWatermark, .full:
            try await fullPull(
                into: &summary, allowMassDelete: safety.allowMassDelete, opening: opening, progress: progress)
        case .automatic:
            try await incrementalPull(into: &summary, progress: progress)
        case .reconcile:
            if hasWatermark && !fullPullInterrupted {
                try await incrementalPull(into: &summary, progress: progress)
            }
            try await fullPull(
                into: &summary, allowMassDelete: safety.allowMassDelete,
                opening: hasWatermark && !fullPullInterrupted ? nil : opening, progress: progress)
            try mirror.setSyncState(.lastReconcileAt, to: String(now()))
        }
        try await syncLinks(full: summary.passes.contains(.full), lists: lists, into: &summary, progress: progress)
        let after = client.counters
        summary.requests = after.requests - before.requests
        summary.rateLimited = after.rateLimited - before.rateLimited
        summary.retries = after.retries - before.retries
        summary.duration = Date().timeIntervalSince(started)
        return summary
    }

    /// Whether `mode` begins, at once, a full pull that plans ranges: no full pull to resume
    /// and, unless the mode asks for one, no watermark for an incremental pull.
    private func beginsPlannedPull(_ mode: Mode) throws -> Bool {
        guard concurrency > 1, try mirror.syncState(.fullPullStartedAt) == nil else { return false }
        let hasWatermark = try mirror.syncState(.incrementalWatermark) != nil
        switch mode {
        case .full: return true
        case .automatic, .reconcile: return !hasWatermark
        }
    }

    /// A page as received: read (`ScannedPage`) and its bodies compressed before it reaches the
    /// writer, so that work overlaps with the previous page's write.
    struct FetchedPage: Sendable {
        var page: ScannedPage
        /// When the request was sent (Unix seconds).
        var fetchedAt: Int
    }

    /// Sends a list or search request and reads its page; a page that cannot be read (a
    /// truncated body) is retried like any transient failure.
    func fetchPage(_ method: String, _ path: String, query: [(String, String)] = [], json: String? = nil) async throws
        -> FetchedPage
    {
        let sentAt = now()
        var page = try await client.send(method, path, query: query, json: json) { response in
            try ScannedPage(data: response.body)
        }
        // Compressed here, on the fetching thread, so that the writer only stores the bytes.
        if let compressor = try? await mirror.currentBodyCompressor() {
            page.pack(with: compressor)
        }
        return FetchedPage(page: page, fetchedAt: sentAt)
    }
}

/// What a sync pulls.
public enum SyncMode: Sendable, Equatable {
    /// Resume an interrupted full pull, else pull everything the first time, else pull
    /// what changed since the watermark.
    case automatic
    /// Walk every contact again (resuming an interrupted walk) and tombstone the missing.
    case full
    /// An incremental pull, then a full walk to detect deletions, archives and merges.
    case reconcile
}

/// What a sync may do that it otherwise refuses.
public struct SyncSafety: Sendable, Equatable {
    /// Sync against another workspace or API host than the mirror's (`WorkspaceBinding`).
    public var rebind: Bool
    /// Let a full walk tombstone more than a fifth of the mirror (or all of it).
    public var allowMassDelete: Bool

    public init(rebind: Bool = false, allowMassDelete: Bool = false) {
        self.rebind = rebind
        self.allowMassDelete = allowMassDelete
    }
}
