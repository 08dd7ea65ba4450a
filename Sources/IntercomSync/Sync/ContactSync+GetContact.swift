import Foundation

/// How fresh a `getContact` answer must be.
public enum ContactFreshness: Sendable, Equatable {
    /// The mirror only; never the network.
    case offline
    /// The mirror when it has the contact; Intercom only for a contact it does not have.
    case cached
    /// Revalidate with Intercom now.
    case refresh
    /// Revalidate when the stored version was last confirmed more than this many seconds ago.
    case maximumAge(Int)
}

/// A `getContact` answer and where it came from.
public struct ContactAnswer: Sendable, Equatable {
    public enum Source: Sendable, Equatable {
        /// Served from the mirror without asking Intercom.
        case mirror
        /// Intercom confirmed the stored version (a 304, or the same version again).
        case revalidated
        /// Intercom sent a new version, now stored.
        case fetched
        /// Intercom could not be reached: the mirror's version, of age `age`.
        case offline
    }

    /// The contact as the mirror now holds it; nil when it is not in the mirror and Intercom
    /// does not have it either.
    public var contact: StoredContact?
    public var source: Source
    /// Seconds since Intercom last confirmed the version served, when known.
    public var age: Int?
    /// Set when the id asked for was merged into another contact: the contact served is the
    /// survivor, and the merged one is tombstoned.
    public var mergedFrom: String?
    /// Why Intercom could not be reached, when `source == .offline`.
    public var offlineReason: String?

    public init(
        contact: StoredContact?, source: Source, age: Int? = nil, mergedFrom: String? = nil, offlineReason: String? = nil
    ) {
        self.contact = contact
        self.source = source
        self.age = age
        self.mergedFrom = mergedFrom
        self.offlineReason = offlineReason
    }
}

extension ContactSync {
    /// Answers from the mirror, revalidating with Intercom as `freshness` asks (the guarantee that a cached read makes no request).
    ///
    /// A revalidation sends `If-None-Match` with the stored ETag: a 304 updates only
    /// `validated_at`, a 200 replaces body and ETag together. Without an ETag the 200 is compared
    /// by `updated_at` and body. A 404 tombstones the contact; a 410 `contact_merged` tombstones it
    /// and follows the `Link` to the survivor. A contact with a pending local write is served as
    /// it is. When Intercom is unreachable the mirror answers and says how old its answer is.
    ///
    /// The server's workspace is checked against the mirror's binding beside the request (one
    /// `GET /me` at the same time, so no round trip is added) and before anything is stored: a
    /// refresh against another workspace, whose 404 would tombstone the contact, is refused with
    /// `SyncError.foreignWorkspace` as a sync or a flush is.
    package func getContact(_ id: String, freshness: ContactFreshness = .cached) async throws -> ContactAnswer {
        // No contact has an empty id, and `GET /contacts/` would list them all instead.
        guard !id.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw DraftError(problems: [FieldProblem("id", "a contact's id cannot be empty")])
        }
        let stored = try mirror.contact(id: id)
        if let answer = Self.mirrorAnswer(stored, freshness: freshness, at: now()) {
            return answer
        }
        if stored == nil && id.hasPrefix("local_") {
            return ContactAnswer(contact: nil, source: .mirror)  // Local ids exist only here.
        }
        // A local id whose create was pushed is asked for by the Intercom id it became.
        let target = stored?.id ?? id
        async let binding = mirror.bind(to: client.workspaceIdentity(), rebind: false)
        switch try await fetch(target, stored: stored) {
        case .offline(let answer):
            return answer
        case .answered(let answer):
            _ = try await binding
            let settled = try await settle(answer, id: target, stored: stored, followingMerges: 3)
            if let contact = settled.contact, contact.state != .tombstoned, try mirror.lacksNotes(ofContact: contact.id) {
                try await readNotes(of: contact.id)
            }
            return settled
        }
    }

    /// The most pages of a contact's notes read at once: a contact with more notes than that
    /// shows the newest.
    static let maximumNotePages = 20

    /// Reads a contact's notes from Intercom into the mirror, when its version lists notes the
    /// mirror has not read. The contact's answer stands without them: a failure here (a
    /// network gone since, a token without the notes scope) leaves them for the next refresh.
    private func readNotes(of id: String) async throws {
        var notes: [JSONValue] = []
        var page = 1
        do {
            while page <= Self.maximumNotePages {
                let answer = try await client.sendJSON(
                    "GET", "/contacts/\(IntercomClient.pathComponent(id))/notes", query: page > 1 ? [("page", String(page))] : [],
                    retry: RetryPolicy(maximumAttempts: 2, rateLimitPatience: 0))
                let list = try JSONValue(jsonText: answer.text)
                if case .array(let items)? = list["data"] { notes += items }
                guard let next = list["pages"]?["next"], next != .null else {
                    try await mirror.storeNotes(notes, of: id, complete: true)
                    return
                }
                page += 1
            }
            try await mirror.storeNotes(notes, of: id, complete: false)
        } catch is IntercomError {
            return
        }
    }

    /// Intercom's answer to a `GET` of a contact, or the mirror's when Intercom is out of reach.
    private enum Fetched {
        case answered(response: HTTPResponse, text: String, sentAt: Int)
        case offline(ContactAnswer)
    }

    /// The answer the mirror gives on its own, or nil when `freshness` needs Intercom. Callers
    /// without a connection (no token) use it to answer what needs no network.
    package static func mirrorAnswer(_ stored: StoredContact?, freshness: ContactFreshness, at time: Int) -> ContactAnswer? {
        guard let stored else {
            return freshness == .offline ? ContactAnswer(contact: nil, source: .mirror) : nil
        }
        guard !needsRevalidation(stored, freshness: freshness, at: time) else { return nil }
        return ContactAnswer(contact: stored, source: .mirror, age: age(of: stored, at: time))
    }

    private static func needsRevalidation(_ stored: StoredContact, freshness: ContactFreshness, at time: Int) -> Bool {
        guard stored.state != .pending else { return false }
        switch freshness {
        case .offline, .cached: return false
        case .refresh: return true
        case .maximumAge(let seconds): return (age(of: stored, at: time) ?? Int.max) > seconds
        }
    }

    private static func age(of stored: StoredContact, at time: Int) -> Int? {
        (stored.validatedAt ?? stored.fetchedAt).map { max(0, time - $0) }
    }

    private func revalidate(_ id: String, stored: StoredContact?, followingMerges hops: Int) async throws -> ContactAnswer {
        switch try await fetch(id, stored: stored) {
        case .offline(let answer): return answer
        case .answered(let answer): return try await settle(answer, id: id, stored: stored, followingMerges: hops)
        }
    }

    private func fetch(_ id: String, stored: StoredContact?) async throws -> Fetched {
        var headers: [String: String] = [:]
        if let etag = stored?.etag { headers["If-None-Match"] = etag }
        let sentAt = now()
        let answer: (response: HTTPResponse, text: String)
        do {
            answer = try await client.sendJSON(
                "GET", "/contacts/\(IntercomClient.pathComponent(id))", headers: headers, accepting: [404, 410],
                retry: RetryPolicy(maximumAttempts: 3, rateLimitPatience: 30))
        } catch let error as IntercomError where error.isOffline || error.code == "timeout" {
            guard let stored else { throw error }
            return .offline(
                ContactAnswer(
                    contact: stored, source: .offline, age: Self.age(of: stored, at: sentAt), offlineReason: error.message))
        }
        return .answered(response: answer.response, text: answer.text, sentAt: sentAt)
    }

    /// Stores what Intercom answered and says what the mirror now holds.
    private func settle(
        _ answer: (response: HTTPResponse, text: String, sentAt: Int), id: String, stored: StoredContact?,
        followingMerges hops: Int
    ) async throws -> ContactAnswer {
        let sentAt = answer.sentAt
        switch answer.response.status {
        case 304:
            try await mirror.markValidated(id: id, at: sentAt)
            return ContactAnswer(contact: try mirror.contact(id: id), source: .revalidated, age: 0)
        case 404:
            try await mirror.tombstone(id: id, at: sentAt)
            return ContactAnswer(contact: try mirror.contact(id: id), source: .fetched, age: 0)
        case 410:
            let error = IntercomError(response: answer.response, operation: "GET /contacts/\(id)")
            guard hops > 0, let survivor = Self.linkedContactID(answer.response.header("link")) else { throw error }
            try await mirror.tombstone(id: id, at: sentAt)
            var followed = try await revalidate(survivor, stored: try mirror.contact(id: survivor), followingMerges: hops - 1)
            followed.mergedFrom = followed.mergedFrom ?? id
            return followed
        default:
            let etag = answer.response.header("etag")
            let before = stored?.body
            let storedID = try await mirror.storeFetched(answer.text, etag: etag, fetchedAt: sentAt)
            let current = try mirror.contact(id: storedID)
            let unchanged = before != nil && current?.body == before
            return ContactAnswer(contact: current, source: unchanged ? .revalidated : .fetched, age: 0)
        }
    }

    /// The contact id in a 410's `Link: </contacts/{id}>; rel="canonical"` (absolute URLs too).
    static func linkedContactID(_ link: String?) -> String? {
        guard let link, let open = link.firstIndex(of: "<"), let close = link.firstIndex(of: ">"), open < close else {
            return nil
        }
        let target = link[link.index(after: open)..<close]
        guard let marker = target.range(of: "/contacts/") else { return nil }
        let id = target[marker.upperBound...].prefix { $0 != "/" && $0 != "?" }
        return id.isEmpty ? nil : String(id)
    }
}
