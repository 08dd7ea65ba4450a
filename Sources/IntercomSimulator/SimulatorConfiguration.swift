import SyntheticData

/// How a simulated workspace behaves. Every default follows Intercom's documented behaviour.
public struct SimulatorConfiguration: Sendable {
    /// 0 picks a free port; `IntercomSimulator.baseURL` reports the one chosen.
    public var port: Int = 0
    /// The workspace's id (`app.id_code` in `GET /me`, `workspace_id` in contacts).
    public var workspaceID = SimulatedWorkspace.defaultWorkspaceID
    /// The access token the workspace accepts (OAuth adds the tokens it issues).
    public var accessToken = "sim-access-token"
    /// The OAuth app: `GET /oauth` and `POST /auth/eagle/token` accept only these.
    public var clientID = "sim-client-id"
    public var clientSecret = "sim-client-secret"
    /// Contacts generated at start, deterministically from `seed`.
    public var seedContacts = 0
    public var seed: UInt64 = 1
    /// Requests allowed per rate-limit window. Intercom's default is 10,000 a minute, split
    /// into 10-second windows.
    public var rateLimit = 1_667
    public var rateLimitWindowSeconds = 10
    /// Whether `GET /contacts/{id}` sends a weak ETag and answers `If-None-Match` with 304.
    /// Live Intercom may not, so clients must work either way.
    public var etags = true
    /// Send `avatar` as the 2.16 OpenAPI file's `{type, image_url}` object instead of the URL
    /// string Intercom's SDKs expect.
    public var avatarAsObject = false
    /// Tags and companies the seeded contacts carry (`SeededRelations`): none by default.
    public var seedTags = 0
    public var seedCompanies = 0
    /// A day on which a share of the seeded contacts was created at once (a bulk import).
    public var bulkDay: ContactGenerator.BulkDay?
    /// Seconds before a contact created or edited shows in search as it now is (Intercom's
    /// search index lags "a few minutes"); list and `GET` see every change at once. 0 is none.
    public var searchLagSeconds = 0
    /// The workspace timezone: stable-version search cuts date filters to its days.
    public var timezone = "America/Los_Angeles"
    /// The version served when a request sends no `Intercom-Version`.
    public var defaultVersion = "2.16"
    /// When the clock starts (Unix seconds); nil follows the wall clock.
    public var startTime: Int?
    public var faults = FaultPlan()
    /// How many of the latest requests `SimulatedWorkspace.requestLog()` keeps: a simulator
    /// left running (`intercom-sync sim`) must not grow without bound.
    public var requestLogCapacity = 100_000

    public init() {}
}

/// Faults injected into API requests (never into `/_sim/` control requests), drawn from a
/// seeded generator so that a run can be repeated.
public struct FaultPlan: Sendable, Equatable {
    /// Added to every request.
    public var latencyMilliseconds = 0
    /// A random extra delay up to this much.
    public var jitterMilliseconds = 0
    /// Added for each contact an answer carries: a page of 150 costs more than one `GET`.
    public var perContactMicroseconds = 0
    /// Share of requests answered 500, 502 or 503 without being processed.
    public var serverErrorRate = 0.0
    /// Share of requests that start a burst of `rateLimitBurstLength` 429 answers.
    public var rateLimitBurstRate = 0.0
    public var rateLimitBurstLength = 5
    /// Share of requests whose write is committed but whose answer is lost: the reply is held
    /// back for `lostResponseDelaySeconds` (past any sensible client timeout) and then the
    /// connection is closed.
    public var lostResponseRate = 0.0
    public var lostResponseDelaySeconds = 30.0
    /// Share of answers whose JSON body is cut in half.
    public var truncatedBodyRate = 0.0
    public var seed: UInt64 = 1
    /// The requests faults apply to, as `"METHOD /path"` prefixes (`"POST /messages"`); empty
    /// means every API request.
    public var routes: [String] = []

    public init() {}

    public var isEmpty: Bool {
        latencyMilliseconds == 0 && jitterMilliseconds == 0 && perContactMicroseconds == 0 && serverErrorRate == 0
            && rateLimitBurstRate == 0
            && lostResponseRate == 0 && truncatedBodyRate == 0
    }

    /// Whether faults apply to a request with this method and path.
    public func applies(method: String, path: String) -> Bool {
        routes.isEmpty || routes.contains { "\(method) \(path)".hasPrefix($0) }
    }
}
