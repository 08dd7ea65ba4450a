/// What one sync did.
public struct SyncSummary: Sendable, Equatable {
    public enum Pass: String, Sendable {
        case full
        case incremental
        /// The whole tag or company lists of contacts whose bodies list only some (reported as
        /// progress; not a pass of `passes`).
        case links
    }

    /// The passes run, in order.
    public var passes: [Pass] = []
    /// True when a pass picked up where a killed one stopped.
    public var resumed = false
    /// Contacts received from Intercom.
    public var fetched = 0
    /// Contacts inserted or changed in the mirror (a contact received again unchanged is not).
    public var written = 0
    /// Contacts Intercom sent that the mirror cannot store (a role it does not know, a time that
    /// is not a whole number of seconds): left out, while the rest of their pages were stored.
    public var malformed: [MalformedContact] = []
    /// Contacts found gone and tombstoned.
    public var tombstoned = 0
    /// The `created_at` ranges a partitioned full pull walked (0: the list walk).
    public var ranges = 0
    /// The `created_at` ranges an incremental pass was split into (0: one cursor).
    public var incrementalRanges = 0
    /// How often a parallel walk halved the requests it keeps in flight on signs of distress
    /// (429, 5xx, timeouts), and the most it kept (`ConcurrencyLimit`).
    public var concurrencyBackoffs = 0
    public var peakConcurrency = 0
    /// Requests spent planning the ranges (counts and the workspace's first and last contact).
    public var planRequests = 0
    /// Ranges whose first page came with the plan's count of them, costing no request of its own.
    public var plannedPages = 0
    /// Why a full pull walked the list, one cursor, where it would have been partitioned.
    public var fallback: String?
    /// `GET`s sent to prove contacts the walk did not see gone before tombstoning them.
    public var proofRequests = 0
    /// Count requests a resumed full pull sent to check its ranges against the mirror, and how
    /// many ranges it walked again because contacts had gone from them since they were walked.
    public var recheckRequests = 0
    public var rewalkedRanges = 0
    /// True when a full pull into a small mirror deferred its indexing to its end
    /// (`ContactMirror.bulkLoading`).
    public var deferredIndexing = false
    /// The tags, segments and companies read (a full pull lists every company; an incremental
    /// one only those newly linked), the contacts whose whole list of tags or companies was read
    /// because their body listed only some, and the requests all that took.
    public var tags = 0
    public var segments = 0
    public var companies = 0
    public var followedLinks = 0
    public var linkRequests = 0
    /// Requests sent, 429 answers received, and retries (from the client's counters).
    public var requests = 0
    public var rateLimited = 0
    public var retries = 0
    /// Wall time in seconds.
    public var duration = 0.0

    public init() {}
}

/// Where a pass stands, for progress bars.
public struct SyncProgress: Sendable, Equatable {
    public var pass: SyncSummary.Pass
    /// Contacts received so far in this pass.
    public var fetched: Int
    /// How many the pass will receive, as Intercom's `total_count` says.
    public var total: Int?
    /// Every page is in, and the indexes the pull deferred are being built.
    public var indexing = false
    /// Requests the mirror has sent to Intercom so far, in this sync and before it.
    public var requests = 0
    /// The requests one of Intercom's rate-limit windows allows the workspace (its
    /// `X-RateLimit-Limit`, per 10 seconds), once an answer has said.
    public var rateLimit: Int?

    public init(
        pass: SyncSummary.Pass, fetched: Int, total: Int? = nil, indexing: Bool = false, requests: Int = 0,
        rateLimit: Int? = nil
    ) {
        self.pass = pass
        self.fetched = fetched
        self.total = total
        self.indexing = indexing
        self.requests = requests
        self.rateLimit = rateLimit
    }
}
