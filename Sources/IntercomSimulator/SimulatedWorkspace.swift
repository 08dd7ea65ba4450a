import Foundation
import IntercomJSON
import NIOCore
import SyntheticData

/// One request as the simulator received it: for convergence and at-most-once checks.
public struct LoggedRequest: Sendable, Equatable {
    public var method: String
    public var path: String
    public var status: Int
    /// The write was committed but the answer never reached the client.
    public var lost: Bool
    /// The simulator's clock when the request arrived (Unix seconds).
    public var time: Int
    /// `X-RateLimit-Reset` of the answer, when it carried one.
    public var rateLimitReset: Int?
}

/// What to do with an answer on the way out.
struct Outcome: Sendable {
    var response: SimResponse
    var delayMilliseconds = 0
    /// Hold the answer back past the client's timeout, then drop the connection.
    var lost = false
}

/// The simulated workspace: its contacts, admins, messages, tokens, rate-limit budget and
/// fault generator. All of Intercom's behaviour lives here; the HTTP server only carries bytes.
public actor SimulatedWorkspace {
    public let configuration: SimulatorConfiguration
    public nonisolated let clock: SimulatorClock
    let days: DayCalendar

    var contacts: [String: SimContact] = [:]
    /// Ids in creation order, removed ones included, their sequences (ascending) and their
    /// `created_at`s (ascending too, unless `createdInOrder` says a contact broke it: one
    /// created while the clock stood before a seeded contact's creation).
    var order: [String] = []
    var orderSequences: [Int] = []
    var orderCreated: [Int] = []
    var createdInOrder = true
    /// With a search lag: the version of each contact that search sees, and the changes on
    /// their way to it (when each shows, and which contact), oldest first.
    var searchVisible: [String: SimContact] = [:]
    var searchPending: [(at: Int, id: String)] = []
    var searchPendingHead = 0
    /// The channels API requests came on (`connectionCount`), the first 10,000.
    var connections: [ObjectIdentifier: any Channel] = [:]
    /// Contacts the answer being built carries, for `FaultPlan.perContactMicroseconds`.
    var contactsInAnswer = 0
    var archived: Set<String> = []
    var deleted: Set<String> = []
    /// Merged-away contact → the contact it was merged into.
    var merged: [String: String] = [:]
    var byEmail: [String: String] = [:]
    var byExternalID: [String: String] = [:]
    var messages: [JSONValue] = []
    /// Rendered 2.16 bodies by id, with the revision they show: list pages reuse them.
    var renderCache: [String: (revision: Int, json: String)] = [:]
    var log: [LoggedRequest] = []

    var tokens: Set<String>
    var revoked: Set<String> = []
    var authorizationCodes: [String: String] = [:]

    var faults: FaultPlan
    var random: SplitMix64
    /// Bumped whenever anything search sees changes, and the sorted answers of recent searches.
    var searchRevision = 0
    var searchCache = SearchCache()
    /// Live contacts counted in ranges of creation positions, at `liveCountsRevision`.
    var liveCounts: [Range<Int>: Int] = [:]
    var liveCountsRevision = 0
    var burstRemaining = 0
    var windowIndex = -1
    var windowUsed = 0
    var nextSequence = 0
    var requestCounter = 0

    /// The default `SimulatorConfiguration.workspaceID`.
    public static let defaultWorkspaceID = "sim4ws2x"
    static let admins: [(id: String, name: String, email: String)] = [
        ("991267459", "Ada Lovelace", "ada@sim.example.com"),
        ("991267460", "Grace Hopper", "grace@sim.example.com"),
    ]

    public init(configuration: SimulatorConfiguration) {
        self.configuration = configuration
        clock = SimulatorClock(startingAt: configuration.startTime)
        days = DayCalendar(timezone: configuration.timezone)
        tokens = [configuration.accessToken]
        faults = configuration.faults
        random = SplitMix64(seed: configuration.faults.seed)
        let generator = ContactGenerator(
            seed: configuration.seed, workspaceID: configuration.workspaceID, bulkDay: configuration.bulkDay)
        // Listed in creation order, as Intercom lists them: sequence follows created_at.
        let seeded = (0..<configuration.seedContacts).map(generator.contact(at:)).sorted {
            ($0.createdAt, $0.index) < ($1.createdAt, $1.index)
        }
        contacts.reserveCapacity(seeded.count)
        for (sequence, synthetic) in seeded.enumerated() {
            let contact = SimContact(synthetic, sequence: sequence)
            contacts[contact.id] = contact
            order.append(contact.id)
            orderSequences.append(sequence)
            orderCreated.append(contact.createdAt)
            byEmail[contact.email!.lowercased()] = contact.id
            if let externalID = contact.externalID { byExternalID[externalID] = contact.id }
            if configuration.searchLagSeconds > 0 { searchVisible[contact.id] = contact }
        }
        nextSequence = configuration.seedContacts
    }

    // MARK: In-process inspection and control (also served under /_sim/)

    /// Every live contact (archived ones included), in creation order, as Intercom 2.16 renders it.
    public func exportContacts() -> [String] {
        order.compactMap { contacts[$0] }.map { render($0, version: APIVersion(raw: "2.16")) }
    }

    public func contactIDs() -> [String] { order.filter { contacts[$0] != nil } }
    public func archivedIDs() -> Set<String> { archived }
    public func deletedIDs() -> Set<String> { deleted }
    public func mergedIDs() -> [String: String] { merged }
    public func sentMessages() -> [String] { messages.map(\.jsonText) }
    /// The latest requests, oldest first: at least the last `requestLogCapacity / 2` of them, at
    /// most `requestLogCapacity`.
    public func requestLog() -> [LoggedRequest] { log }
    /// How many TCP connections API requests have come on so far: a client that keeps its
    /// connections alive opens about as many as it has requests in flight.
    public func connectionCount() -> Int { connections.count }

    public func setFaults(_ plan: FaultPlan) {
        faults = plan
        random = SplitMix64(seed: plan.seed)
        burstRemaining = 0
    }

    public func revoke(token: String) { revoked.insert(token) }

    /// Changes a contact as if someone edited it in Intercom now (fields as in `PUT`).
    public func edit(id: String, fieldsJSON: String) throws {
        let fields = try JSONValue(jsonText: fieldsJSON)
        do {
            _ = try update(id: id, with: fields, version: APIVersion(raw: configuration.defaultVersion))
        } catch let error as APIError {
            throw SimulatorError(error.message)
        }
    }

    /// Edits `count` live contacts picked by `seed` (their `last_seen_at` and a custom
    /// attribute), as if over the last `spreadSeconds`: each gets an `updated_at` drawn from that
    /// span, never earlier than it had. What a busy workspace does in a day, for benchmarks of
    /// the incremental pull. Returns how many were edited.
    public func editMany(count: Int, spreadSeconds: Int, seed: UInt64) -> Int {
        var generator = SplitMix64(seed: seed)
        var ids = order.filter { live($0) != nil }
        let edits = min(max(0, count), ids.count)
        let now = clock.now
        for index in 0..<edits {
            ids.swapAt(index, index + Int(generator.next() % UInt64(ids.count - index)))
            guard var contact = contacts[ids[index]] else { continue }
            let at = now - Int(generator.next() % UInt64(max(1, spreadSeconds)))
            contact.lastSeenAt = at
            contact.customAttributes["visits"] = .int(Int64(generator.next() % 1_000))
            contact.updatedAt = max(contact.updatedAt, at)
            contact.revision += 1
            contacts[contact.id] = contact
            searchRevision &+= 1
            changedForSearch(contact.id)
        }
        return edits
    }

    /// Creates a contact as if someone added it in Intercom now; returns its id.
    public func create(fieldsJSON: String) throws -> String {
        do {
            return try create(with: try JSONValue(jsonText: fieldsJSON)).id
        } catch let error as APIError {
            throw SimulatorError(error.message)
        }
    }

    public func delete(id: String) throws {
        guard live(id) != nil else { throw SimulatorError("no contact \(id)") }
        remove(id)
        deleted.insert(id)
    }

    public func archive(id: String, _ archive: Bool = true) throws {
        guard contacts[id] != nil else { throw SimulatorError("no contact \(id)") }
        if archive { archived.insert(id) } else { archived.remove(id) }
        searchRevision &+= 1
    }

    public func merge(from: String, into: String) throws {
        do {
            _ = try mergeContacts(from: from, into: into, validate: false)
        } catch let error as APIError {
            throw SimulatorError(error.message)
        }
    }

    // MARK: Request handling

    func handle(_ request: SimRequest, connection: (any Channel)? = nil) -> Outcome {
        requestCounter += 1
        if let connection, !request.path.hasPrefix("/_sim/"), connections.count < 10_000 {
            // Held, so that a closed channel's identifier is never taken by a new one.
            connections[ObjectIdentifier(connection)] = connection
        }
        let requestID = "sim-\(configuration.seed)-\(requestCounter)"
        if request.path.hasPrefix("/_sim/") {
            return Outcome(response: control(request))
        }
        let faulty = !faults.isEmpty && faults.applies(method: request.method, path: request.path)
        var outcome = apiOutcome(request, requestID: requestID, faulty: faulty)
        if faulty, outcome.response.status < 300 {
            if random.chance(faults.lostResponseRate) {
                outcome.lost = true
            } else if random.chance(faults.truncatedBodyRate), outcome.response.body.utf8.count > 1 {
                let bytes = Array(outcome.response.body.utf8)
                outcome.response.body = String(decoding: bytes.prefix(bytes.count / 2), as: UTF8.self)
            }
        }
        if faulty, faults.latencyMilliseconds > 0 || faults.jitterMilliseconds > 0 || faults.perContactMicroseconds > 0 {
            outcome.delayMilliseconds =
                faults.latencyMilliseconds + (faults.jitterMilliseconds > 0 ? random.below(faults.jitterMilliseconds + 1) : 0)
                + contactsInAnswer * faults.perContactMicroseconds / 1000
        }
        contactsInAnswer = 0
        if log.count >= max(configuration.requestLogCapacity, 2) {
            log.removeFirst(log.count - max(configuration.requestLogCapacity, 2) / 2)
        }
        log.append(
            LoggedRequest(
                method: request.method, path: request.path, status: outcome.response.status, lost: outcome.lost,
                time: clock.now, rateLimitReset: outcome.response.header("X-RateLimit-Reset").flatMap { Int($0) }))
        return outcome
    }

    private func apiOutcome(_ request: SimRequest, requestID: String, faulty: Bool) -> Outcome {
        if request.path == "/oauth" || request.path == "/auth/eagle/token" {
            return Outcome(response: oauth(request, requestID: requestID))
        }
        let token = bearerToken(request)
        guard let token, tokens.contains(token), !revoked.contains(token) else {
            let error =
                token.map(revoked.contains) == true
                ? APIError(401, "token_revoked", "Token revoked") : APIError(401, "unauthorized", "Access Token Invalid")
            return Outcome(response: error.response(requestID: requestID))
        }
        var rateHeaders: [(String, String)] = []
        let limited = spendBudget(headers: &rateHeaders)
        var response: SimResponse
        if limited || (faulty && startsOrContinuesBurst()) {
            response = APIError(
                429, "rate_limit_exceeded",
                "Exceeded rate limit of \(configuration.rateLimit) in \(configuration.rateLimitWindowSeconds)_seconds"
            ).response(requestID: requestID)
        } else if faulty, random.chance(faults.serverErrorRate) {
            let status = [500, 502, 503][random.below(3)]
            response = APIError(status, status == 503 ? "service_unavailable" : "server_error", "Simulated server error")
                .response(requestID: requestID)
        } else {
            let version = APIVersion(raw: request.headers["intercom-version"] ?? configuration.defaultVersion)
            do {
                guard APIVersion.known.contains(version.raw) else {
                    throw APIError(400, "intercom_version_invalid", "The requested version \(version.raw) is not valid")
                }
                response = try route(request, version: version)
            } catch let error as APIError {
                response = error.response(requestID: requestID)
            } catch {
                response = APIError(500, "server_error", "\(error)").response(requestID: requestID)
            }
        }
        response.headers += rateHeaders
        return Outcome(response: response)
    }

    private func bearerToken(_ request: SimRequest) -> String? {
        guard let header = request.headers["authorization"], header.lowercased().hasPrefix("bearer ") else { return nil }
        return String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
    }

    /// Counts the request against the window; true when it is over the limit.
    private func spendBudget(headers: inout [(String, String)]) -> Bool {
        let window = configuration.rateLimitWindowSeconds
        let index = clock.now / window
        if index != windowIndex {
            windowIndex = index
            windowUsed = 0
        }
        windowUsed += 1
        headers = [
            ("X-RateLimit-Limit", String(configuration.rateLimit)),
            ("X-RateLimit-Remaining", String(max(0, configuration.rateLimit - windowUsed))),
            ("X-RateLimit-Reset", String((index + 1) * window)),
        ]
        return windowUsed > configuration.rateLimit
    }

    private func startsOrContinuesBurst() -> Bool {
        if burstRemaining > 0 {
            burstRemaining -= 1
            return true
        }
        if faults.rateLimitBurstRate > 0, random.chance(faults.rateLimitBurstRate) {
            burstRemaining = max(0, faults.rateLimitBurstLength - 1)
            return true
        }
        return false
    }

    // MARK: Routing

    private func route(_ request: SimRequest, version: APIVersion) throws -> SimResponse {
        let parts = request.path.split(separator: "/").map(String.init)
        switch (request.method, parts.count, parts.first) {
        case ("GET", 1, "me"): return .json(me())
        case ("GET", 1, "admins"): return .json(adminList())
        case ("GET", 1, "contacts"): return .json(try list(request.query, version: version))
        case ("POST", 1, "contacts"):
            let contact = try create(with: try jsonBody(request))
            return contactResponse(contact, version: version)
        case ("POST", 2, "contacts") where parts[1] == "search":
            return .json(try search(try jsonBody(request), version: version))
        case ("POST", 2, "contacts") where parts[1] == "merge":
            let body = try jsonBody(request)
            guard let from = body["from"]?.string, let into = body["into"]?.string else {
                throw APIError.invalid("from and into are required")
            }
            let survivor = try mergeContacts(
                from: from, into: into, validate: !(body["skip_duplicate_validation"]?.bool ?? false))
            return contactResponse(survivor, version: version)
        case ("GET", 2, "contacts"): return try getContact(parts[1], request: request, version: version)
        case ("PUT", 2, "contacts"):
            return contactResponse(try update(id: parts[1], with: try jsonBody(request), version: version), version: version)
        case ("DELETE", 2, "contacts"):
            let id = parts[1]
            guard let contact = live(id) else { throw APIError.notFound() }
            remove(id)
            deleted.insert(id)
            return .json(
                .object(["type": "contact", "id": .string(id), "external_id": .optional(contact.externalID), "deleted": true]))
        case ("POST", 3, "contacts") where parts[2] == "archive" || parts[2] == "unarchive":
            let id = parts[1]
            guard let contact = contacts[id] else { throw APIError.notFound("Contact Not Found") }
            let archive = parts[2] == "archive"
            if archive { archived.insert(id) } else { archived.remove(id) }
            searchRevision &+= 1
            return .json(
                .object([
                    "type": "contact", "id": .string(id), "external_id": .optional(contact.externalID),
                    "archived": .bool(archive),
                ]))
        case ("POST", 1, "messages"): return .json(try sendMessage(try jsonBody(request)))
        default:
            throw APIError(404, "not_found", "Resource Not Found")
        }
    }

    private func jsonBody(_ request: SimRequest) throws -> JSONValue {
        guard let contentType = request.headers["content-type"], contentType.lowercased().contains("json") else {
            throw APIError(415, "unsupported_media_type", "Content-Type must be application/json")
        }
        guard let value = try? JSONValue(jsonText: request.bodyText), case .object = value else {
            throw APIError(400, "parameter_invalid", "The request body is not a valid JSON object")
        }
        return value
    }

    /// A contact's body for `version`, from the cache when it is current. Only `GET` keeps what
    /// it renders (`keeping`): a client revalidates the contacts it reads, where a walk reads
    /// each contact of a page once, and a million bodies kept would cost the pages' rendering
    /// their weight again in fresh memory.
    func render(_ contact: SimContact, version: APIVersion, keeping: Bool = false) -> String {
        guard version.isAtLeast2_16 else { return contact.json(version: version, avatarAsObject: configuration.avatarAsObject) }
        if let cached = renderCache[contact.id], cached.revision == contact.revision { return cached.json }
        let json = contact.json(version: version, avatarAsObject: configuration.avatarAsObject)
        if keeping { renderCache[contact.id] = (contact.revision, json) }
        return json
    }

    private func contactResponse(_ contact: SimContact, version: APIVersion) -> SimResponse {
        var response = SimResponse.json(render(contact, version: version, keeping: true))
        if configuration.etags { response.headers.append(("ETag", contact.etag)) }
        return response
    }

    // MARK: Contacts

    /// A contact that GET, list and search can see: not archived, merged or deleted.
    func live(_ id: String) -> SimContact? {
        guard let contact = contacts[id], !isArchived(id) else { return nil }
        return contact
    }

    /// Whether `id` names a live contact, found without copying it.
    private func isLive(_ id: String) -> Bool { contacts.index(forKey: id) != nil && !isArchived(id) }

    /// How many live contacts were created in `slice` of `order`, kept until search sees a
    /// change: a walk asks its range's total with every page, as an index would answer it.
    private func liveCount(in slice: Range<Int>) -> Int {
        if liveCountsRevision != searchRevision || liveCounts.count >= 4_096 {
            liveCounts = [:]
            liveCountsRevision = searchRevision
        }
        if let kept = liveCounts[slice] { return kept }
        var count = 0
        for id in order[slice] where isLive(id) { count += 1 }
        liveCounts[slice] = count
        return count
    }

    private func isArchived(_ id: String) -> Bool { !archived.isEmpty && archived.contains(id) }

    private func insert(_ contact: SimContact) {
        contacts[contact.id] = contact
        searchRevision &+= 1
        if let last = orderCreated.last, contact.createdAt < last { createdInOrder = false }
        order.append(contact.id)
        orderSequences.append(contact.sequence)
        orderCreated.append(contact.createdAt)
        changedForSearch(contact.id)
        if let email = contact.email { byEmail[email.lowercased()] = contact.id }
        if let externalID = contact.externalID { byExternalID[externalID] = contact.id }
        nextSequence = max(nextSequence, contact.sequence + 1)
    }

    private func remove(_ id: String) {
        guard let contact = contacts.removeValue(forKey: id) else { return }
        searchRevision &+= 1
        renderCache[id] = nil
        searchVisible[id] = nil
        archived.remove(id)
        if let email = contact.email, byEmail[email.lowercased()] == id { byEmail[email.lowercased()] = nil }
        if let externalID = contact.externalID, byExternalID[externalID] == id { byExternalID[externalID] = nil }
    }

    private func getContact(_ id: String, request: SimRequest, version: APIVersion) throws -> SimResponse {
        if let contact = live(id) {
            if configuration.etags, let tag = request.headers["if-none-match"],
                tag.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == contact.etag })
            {
                return SimResponse(status: 304, headers: [("ETag", contact.etag)], body: "")
            }
            return contactResponse(contact, version: version)
        }
        if merged[id] != nil {
            guard version.isAtLeast2_16 else { throw APIError.notFound() }
            var target = id
            for _ in 0..<3 {
                guard let next = merged[target] else { break }
                target = next
            }
            var error = APIError(410, "contact_merged", "Contact has been merged into another contact")
            error.headers = [("Link", "</contacts/\(target)>; rel=\"canonical\"")]
            throw error
        }
        throw APIError.notFound()
    }

    private static let writableStrings = ["external_id", "email", "phone", "name", "avatar"]

    /// Checks and applies `POST`/`PUT` fields; `existing` is nil for a create.
    private func apply(_ body: JSONValue, to contact: inout SimContact, creating: Bool) throws {
        guard case .object(let fields) = body else { throw APIError.invalid("The body must be a JSON object") }
        for key in Self.writableStrings {
            guard let value = fields[key] else { continue }
            guard value.string != nil || value == .null else {
                throw APIError.invalid("\(key) must be a string", field: key)
            }
        }
        if let role = fields["role"] {
            guard let text = role.string, text == "user" || text == "lead" else {
                throw APIError.invalid("role must be user or lead", field: "role")
            }
            contact.role = text
        }
        if let email = fields["email"]?.string {
            guard Self.isPlausibleEmail(email) else {
                throw APIError.invalid("The email \(email) is not a valid email address", field: "email")
            }
        }
        if fields["email_verified"] != nil, fields["email"] == nil {
            throw APIError.invalid("email_verified can only be sent together with email", field: "email_verified")
        }
        if let owner = fields["owner_id"], owner != .null {
            let ownerID = owner.string ?? owner.int.map(String.init)
            guard let ownerID, Self.admins.contains(where: { $0.id == ownerID }) else {
                throw APIError.invalid("The owner specified is not a member of the workspace", field: "owner_id")
            }
            contact.ownerID = ownerID
        }
        if let attributes = fields["custom_attributes"] {
            guard case .object(let values) = attributes else {
                throw APIError.invalid("custom_attributes must be an object", field: "custom_attributes")
            }
            contact.customAttributes.merge(values) { _, new in new }
        }
        for key in ["signed_up_at", "last_seen_at"] {
            guard let value = fields[key], value != .null else { continue }
            guard let time = value.int else { throw APIError.invalid("\(key) must be a Unix timestamp", field: key) }
            if key == "signed_up_at" { contact.signedUpAt = time } else { contact.lastSeenAt = time }
        }
        if let flag = fields["unsubscribed_from_emails"] {
            guard let value = flag.bool else {
                throw APIError.invalid("unsubscribed_from_emails must be a boolean", field: "unsubscribed_from_emails")
            }
            contact.unsubscribedFromEmails = value
        }
        let newEmail = fields["email"].map { $0.string }
        let newExternalID = fields["external_id"].map { $0.string }
        try checkDuplicates(email: newEmail ?? nil, externalID: newExternalID ?? nil, except: creating ? nil : contact.id)
        if let newEmail { contact.email = newEmail }
        if let newExternalID { contact.externalID = newExternalID }
        if let phone = fields["phone"] { contact.phone = phone.string }
        if let name = fields["name"] { contact.name = name.string }
        if let avatar = fields["avatar"] { contact.avatar = avatar.string }
    }

    static func isPlausibleEmail(_ email: String) -> Bool {
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".") && !parts[1].hasPrefix(".")
            && !parts[1].hasSuffix(".") && !email.contains(where: \.isWhitespace)
    }

    private func checkDuplicates(email: String?, externalID: String?, except: String?) throws {
        let matches = [email.flatMap { byEmail[$0.lowercased()] }, externalID.flatMap { byExternalID[$0] }]
        for case let id? in matches where id != except {
            let wording = archived.contains(id) ? "An archived contact" : "A contact"
            throw APIError(409, "conflict", "\(wording) matching those details already exists with id=\(id)")
        }
    }

    func create(with body: JSONValue) throws -> SimContact {
        guard body["email"] != nil || body["external_id"] != nil || body["role"] != nil else {
            throw APIError.invalid("Provide at least one of email, external_id or role")
        }
        let now = clock.now
        var contact = SimContact(
            id: newContactID(), workspaceID: configuration.workspaceID, role: "user", createdAt: now, sequence: nextSequence)
        try apply(body, to: &contact, creating: true)
        if contact.email == nil && contact.externalID == nil && body["role"] == nil {
            throw APIError.invalid("Provide at least one of email, external_id or role")
        }
        insert(contact)
        return contact
    }

    private func newContactID() -> String {
        let stamp = String(UInt32(truncatingIfNeeded: clock.now), radix: 16)
        let serial = String(nextSequence, radix: 16)
        let padding = String(repeating: "0", count: max(0, 16 - serial.count))
        return String((String(repeating: "0", count: max(0, 8 - stamp.count)) + stamp + "f" + padding + serial).suffix(24))
    }

    func update(id: String, with body: JSONValue, version: APIVersion) throws -> SimContact {
        guard var contact = live(id) else { throw APIError.notFound() }
        let before = (contact.email, contact.externalID)
        try apply(body, to: &contact, creating: false)
        if let email = before.0, byEmail[email.lowercased()] == id { byEmail[email.lowercased()] = nil }
        if let externalID = before.1, byExternalID[externalID] == id { byExternalID[externalID] = nil }
        if let email = contact.email { byEmail[email.lowercased()] = id }
        if let externalID = contact.externalID { byExternalID[externalID] = id }
        contact.updatedAt = max(clock.now, contact.updatedAt)
        contact.revision += 1
        contacts[id] = contact
        searchRevision &+= 1
        changedForSearch(id)
        return contact
    }

    /// A contact changed: search sees it so after the lag.
    private func changedForSearch(_ id: String) {
        guard configuration.searchLagSeconds > 0 else { return }
        searchPending.append((clock.now + configuration.searchLagSeconds, id))
    }

    /// The version of a live contact that search sees now: the current one without a lag, else
    /// the one indexed once its lag passed (none yet for a contact created within the lag).
    private func searchable(_ id: String) -> SimContact? {
        guard configuration.searchLagSeconds > 0 else { return live(id) }
        return live(id) != nil ? searchVisible[id] : nil
    }

    /// Moves the changes whose lag has passed into what search sees.
    private func catchUpSearch() {
        guard configuration.searchLagSeconds > 0 else { return }
        let now = clock.now
        while searchPendingHead < searchPending.count, searchPending[searchPendingHead].at <= now {
            let id = searchPending[searchPendingHead].id
            searchVisible[id] = contacts[id]
            searchRevision &+= 1
            searchPendingHead += 1
        }
        if searchPendingHead > 1_024, searchPendingHead * 2 > searchPending.count {
            searchPending.removeFirst(searchPendingHead)
            searchPendingHead = 0
        }
    }

    private func mergeContacts(from: String, into: String, validate: Bool) throws -> SimContact {
        guard let source = live(from), var target = live(into) else { throw APIError.notFound() }
        guard source.role == "lead", target.role == "user" else {
            throw APIError(400, "invalid_merge", "Only a lead can be merged, and only into a user")
        }
        if validate {
            let sameEmail = source.email != nil && source.email?.lowercased() == target.email?.lowercased()
            let samePhone = source.phone != nil && source.phone == target.phone
            guard sameEmail || samePhone else {
                throw APIError(
                    400, "invalid_merge",
                    "The contacts are not duplicates (matching email or phone); pass skip_duplicate_validation to merge anyway")
            }
        }
        remove(from)
        merged[from] = into
        target.updatedAt = max(clock.now, target.updatedAt)
        target.revision += 1
        contacts[into] = target
        searchRevision &+= 1
        changedForSearch(into)
        return target
    }

    // MARK: List and search

    private func perPage(_ value: JSONValue?, default fallback: Int) throws -> Int {
        guard let value else { return fallback }
        let number = value.int ?? value.string.flatMap { Int($0) }
        guard let number, number > 0 else { throw APIError.invalid("per_page must be a positive integer", field: "per_page") }
        return min(number, 150)
    }

    private func list(_ query: [String: String], version: APIVersion) throws -> String {
        let size = try perPage(query["per_page"].map(JSONValue.string), default: 10)
        var start = 0
        var page = 1
        if let cursor = query["starting_after"] {
            guard let position = Cursor(token: cursor) else {
                throw APIError.invalid("starting_after is not a valid cursor", field: "starting_after")
            }
            page = position.page + 1
            // First id created after the cursor's sequence.
            start = firstIndex(afterSequence: position.value)
        }
        var data: [String] = []
        var index = start
        var lastSequence = -1
        while index < order.count, data.count < size {
            if let contact = live(order[index]) {
                data.append(render(contact, version: version))
                lastSequence = contact.sequence
            }
            index += 1
        }
        contactsInAnswer = data.count
        let total = contacts.count - archived.count
        let hasMore = data.count == size && order[index...].contains { live($0) != nil }
        return self.page(
            data, total: total, page: page, perPage: size,
            next: hasMore ? Cursor(value: lastSequence, page: page).token : nil)
    }

    private func firstIndex(afterSequence sequence: Int) -> Int {
        var low = 0
        var high = orderSequences.count
        while low < high {
            let middle = (low + high) / 2
            if orderSequences[middle] <= sequence { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// A `list` answer around already-rendered contacts.
    private func page(_ data: [String], total: Int, page: Int, perPage: Int, next: String?) -> String {
        var pages: [String: JSONValue] = [
            "type": "pages", "page": .int(Int64(page)), "per_page": .int(Int64(perPage)),
            "total_pages": .int(Int64(max(1, (total + perPage - 1) / perPage))),
        ]
        if let next { pages["next"] = .object(["per_page": .int(Int64(perPage)), "starting_after": .string(next)]) }
        return #"{"type":"list","data":["# + data.joined(separator: ",") + #"],"total_count":\#(total),"pages":"#
            + JSONValue.object(pages).jsonText + "}"
    }

    private func search(_ body: JSONValue, version: APIVersion) throws -> String {
        guard let query = body["query"] else { throw APIError.invalid("query is required", field: "query") }
        let filter = try SearchFilter.parse(query, days: version.isPreview ? nil : days)
        let size = try perPage(body["pagination"]?["per_page"], default: 50)
        var offset = 0
        var page = 1
        if let cursor = body["pagination"]?["starting_after"], cursor != .null {
            guard let token = cursor.string, let position = Cursor(token: token) else {
                throw APIError.invalid("starting_after is not a valid cursor", field: "starting_after")
            }
            offset = position.value
            page = position.page + 1
        }
        catchUpSearch()
        // A walk asks the same query page after page: its sorted matches are kept until anything
        // search sees changes (Intercom's own index answers a page in about the same time).
        let cacheKey = "\(version.isPreview)|\(query.jsonText)|\(body["sort"]?.jsonText ?? "")"
        if let matches = searchCache.matches(for: cacheKey, revision: searchRevision) {
            return searchPage(matches, offset: offset, size: size, page: page, version: version)
        }
        var order: (field: String, ascending: Bool)?
        if let sort = body["sort"] {
            let orderText = sort["order"]?.string ?? "descending"
            guard orderText == "ascending" || orderText == "descending" else {
                throw APIError(400, "invalid_sort_order", "Sort order must be ascending or descending")
            }
            order = (sort["field"]?.string ?? "updated_at", orderText == "ascending")
        }
        // Contacts held in creation order answer an unsorted or created_at-sorted query in that
        // order (ties keep creation order ascending).
        let inCreationOrder = order == nil || (order?.field == "created_at" && createdInOrder)
        let before: (SimContact, SimContact) -> Bool = { left, right in
            guard let (field, ascending) = order else { return left.sequence < right.sequence }
            let comparison = Self.compare(left.searchValue(field), right.searchValue(field))
            if comparison == 0 { return left.sequence < right.sequence }
            return ascending ? comparison < 0 : comparison > 0
        }
        let candidates = candidates(for: filter)
        let windows = createdInOrder ? filter.createdAtWindows : nil
        // A filter of one window of creation time is what the candidates' range already holds.
        let impliedByRange = windows?.count == 1
        let found = candidates.lazy.compactMap(searchable).filter { impliedByRange || filter.matches($0) }
        let wanted = offset + size
        let byUpdate = order?.field == "updated_at"
        if let windows, inCreationOrder || byUpdate, configuration.searchLagSeconds == 0, wanted <= 1_000 {
            // Windows of creation time alone, as a planner's counts and the oldest, newest and
            // last updated contact ask: count the live ids of their ranges without copying a
            // contact, and read the `wanted` at the end the order starts from.
            let slices = windows.map { range(of: $0) }
            if byUpdate, let ascending = order?.ascending {
                // The `wanted` first by updated_at, ties in creation order, kept as positions.
                var total = 0
                var best: [(key: Int, position: Int)] = []
                for slice in slices {
                    for position in slice {
                        let id = self.order[position]
                        guard let index = contacts.index(forKey: id), !isArchived(id) else { continue }
                        total += 1
                        let updatedAt = contacts.values[index].updatedAt
                        let entry = (key: ascending ? updatedAt : -updatedAt, position: position)
                        if best.count == wanted, let last = best.last, (entry.key, entry.position) >= (last.key, last.position) {
                            continue
                        }
                        let at = best.firstIndex { ($0.key, $0.position) > (entry.key, entry.position) } ?? best.count
                        best.insert(entry, at: at)
                        if best.count > wanted { best.removeLast() }
                    }
                }
                let contacts = best.compactMap { live(self.order[$0.position]) }
                return searchPage(contacts, total: total, offset: offset, size: size, page: page, version: version)
            }
            let total = slices.reduce(0) { $0 + liveCount(in: $1) }
            var best: [SimContact] = []
            let descending = order?.ascending == false
            for slice in descending ? slices.reversed() : slices {
                var position = descending ? slice.upperBound - 1 : slice.lowerBound
                while best.count < wanted && slice.contains(position) {
                    if let contact = live(self.order[position]) { best.append(contact) }
                    position += descending ? -1 : 1
                }
            }
            return searchPage(best, total: total, offset: offset, size: size, page: page, version: version)
        }
        if wanted <= 1_000 && wanted * 8 < candidates.count {
            // The first pages of a large answer (a count, the oldest or newest contact): one pass
            // that keeps the best `wanted`, as an index would give them, rather than gathering and
            // sorting every match. (Deeper pages gather once, and are kept.)
            var total = 0
            var best: [SimContact] = []
            best.reserveCapacity(wanted + 1)
            if inCreationOrder && order?.ascending != false {
                for contact in found {
                    total += 1
                    if best.count < wanted { best.append(contact) }
                }
            } else if inCreationOrder {
                // Descending creation order: the last `wanted` (kept in a ring), newest first.
                var next = 0
                for contact in found {
                    total += 1
                    if best.count < wanted {
                        best.append(contact)
                    } else {
                        best[next] = contact
                        next = (next + 1) % wanted
                    }
                }
                best = Array((best[next...] + best[..<next]).reversed())
            } else {
                best = Self.first(wanted, of: found, by: before, counting: &total)
            }
            return searchPage(best, total: total, offset: offset, size: size, page: page, version: version)
        }
        var matches = Array(found)
        if inCreationOrder {
            if order?.ascending == false { matches.reverse() }
        } else {
            matches.sort(by: before)
        }
        searchCache.keep(matches, for: cacheKey, revision: searchRevision)
        return searchPage(matches, offset: offset, size: size, page: page, version: version)
    }

    /// A page of `matches` (sorted at least through `offset + size`), of `total` in all.
    private func searchPage(
        _ matches: [SimContact], total: Int? = nil, offset: Int, size: Int, page: Int, version: APIVersion
    ) -> String {
        let total = total ?? matches.count
        let slice = matches.dropFirst(offset).prefix(size)
        let hasMore = offset + slice.count < total
        contactsInAnswer = slice.count
        return self.page(
            slice.map { render($0, version: version) }, total: total,
            page: page, perPage: size,
            next: hasMore ? Cursor(value: offset + slice.count, page: page).token : nil)
    }

    /// The first `count` of `items` in the order `before`, in that order.
    static func first(
        _ count: Int, of items: some Sequence<SimContact>, by before: (SimContact, SimContact) -> Bool,
        counting total: inout Int
    ) -> [SimContact] {
        var best: [SimContact] = []
        best.reserveCapacity(count + 1)
        for item in items {
            total += 1
            if best.count == count, let last = best.last, !before(item, last) { continue }
            var low = 0
            var high = best.count
            while low < high {
                let middle = (low + high) / 2
                if before(best[middle], item) { low = middle + 1 } else { high = middle }
            }
            best.insert(item, at: low)
            if best.count > count { best.removeLast() }
        }
        return best
    }

    /// The ids a search must look at, in creation order: all of them, or only the slice a
    /// `created_at` window of the filter allows (found by binary search, since contacts are
    /// held in creation order), which keeps a partitioned walk of a large workspace cheap.
    private func candidates(for filter: SearchFilter) -> ArraySlice<String> {
        guard createdInOrder, let window = filter.createdAtWindow else { return order[...] }
        return order[range(of: window)]
    }

    /// The positions in `order` of the contacts created in `window` (contacts created in order).
    private func range(of window: DateWindow) -> Range<Int> {
        func firstIndex(atLeast time: Int) -> Int {
            var low = 0
            var high = orderCreated.count
            while low < high {
                let middle = (low + high) / 2
                if orderCreated[middle] < time { low = middle + 1 } else { high = middle }
            }
            return low
        }
        let lower = window.lower == Int.min ? 0 : firstIndex(atLeast: window.lower)
        let upper = window.upper == Int.max ? order.count : firstIndex(atLeast: window.upper)
        return lower < upper ? lower..<upper : lower..<lower
    }

    private static func compare(_ left: JSONValue?, _ right: JSONValue?) -> Int {
        switch (left, right) {
        case (.int(let a)?, .int(let b)?): return a < b ? -1 : (a > b ? 1 : 0)
        case (.string(let a)?, .string(let b)?): return a < b ? -1 : (a > b ? 1 : 0)
        case (.bool(let a)?, .bool(let b)?): return a == b ? 0 : (a ? 1 : -1)
        case (nil, nil): return 0
        case (nil, _): return -1
        case (_, nil): return 1
        default: return 0
        }
    }

    // MARK: Admins and messages

    private func adminJSON(_ admin: (id: String, name: String, email: String)) -> [String: JSONValue] {
        [
            "type": "admin", "id": .string(admin.id), "name": .string(admin.name), "email": .string(admin.email),
            "email_verified": true, "away_mode_enabled": false, "away_mode_reassign": false, "has_inbox_seat": true,
            "team_ids": .array([]), "job_title": .null, "avatar": .object(["type": "avatar", "image_url": .null]),
        ]
    }

    private func me() -> JSONValue {
        var admin = adminJSON(Self.admins[0])
        admin["app"] = .object([
            "type": "app", "id_code": .string(configuration.workspaceID), "name": "Simulated workspace",
            "created_at": 1_700_000_000,
            "secure": false, "identity_verification": false, "timezone": .string(configuration.timezone), "region": "US",
        ])
        return .object(admin)
    }

    private func adminList() -> JSONValue {
        .object(["type": "admin.list", "admins": .array(Self.admins.map { .object(adminJSON($0)) })])
    }

    private func sendMessage(_ body: JSONValue) throws -> JSONValue {
        let type = body["message_type"]?.string
        guard let type, ["inapp", "in_app", "email"].contains(type) else {
            throw APIError.invalid("message_type must be inapp or email", field: "message_type")
        }
        guard let text = body["body"]?.string, !text.isEmpty else {
            throw APIError.invalid("Body is required", field: "body")
        }
        if type == "email" {
            guard let subject = body["subject"]?.string, !subject.isEmpty else {
                throw APIError(422, "parameter_not_found", "No subject supplied for email message")
            }
            guard let template = body["template"]?.string, template == "plain" || template == "personal" else {
                throw APIError.invalid("template must be plain or personal for an email", field: "template")
            }
        }
        guard let from = body["from"], from["type"]?.string == "admin",
            let adminID = from["id"]?.string ?? from["id"]?.int.map(String.init)
        else {
            throw APIError.invalid("from must be {\"type\": \"admin\", \"id\": …}", field: "from")
        }
        guard let admin = Self.admins.first(where: { $0.id == adminID }) else {
            throw APIError(404, "admin_not_found", "Admin Not Found")
        }
        var recipients: [JSONValue] = []
        switch body["to"] {
        case .array(let items)?: recipients = items
        case let single?: recipients = [single]
        case nil: throw APIError.invalid("to is required", field: "to")
        }
        guard !recipients.isEmpty else { throw APIError.invalid("to is required", field: "to") }
        for recipient in recipients {
            guard let kind = recipient["type"]?.string, kind == "user" || kind == "lead", let id = recipient["id"]?.string else {
                throw APIError.invalid("to must be {\"type\": \"user\" or \"lead\", \"id\": …}", field: "to")
            }
            guard live(id) != nil else { throw APIError.notFound() }
        }
        var fields: [String: JSONValue] = [
            "type": "admin_message", "id": .string(String(messages.count + 1)), "created_at": .int(Int64(clock.now)),
            "body": .string(text),
            "message_type": .string(type == "in_app" ? "inapp" : type),
            "owner": .object([
                "type": "admin", "id": .string(admin.id), "name": .string(admin.name), "email": .string(admin.email),
                "away_mode_enabled": false, "away_mode_reassign": false,
            ]),
        ]
        if let subject = body["subject"]?.string { fields["subject"] = .string(subject) }
        var stored = fields
        stored["to"] = body["to"]
        messages.append(.object(stored))
        return .object(fields)
    }

    // MARK: OAuth

    private func oauth(_ request: SimRequest, requestID: String) -> SimResponse {
        if request.path == "/oauth" {
            guard request.method == "GET", request.query["client_id"] == configuration.clientID else {
                return APIError.invalid("Unknown client_id").response(requestID: requestID)
            }
            guard let redirect = request.query["redirect_uri"], var components = URLComponents(string: redirect) else {
                return APIError.invalid("redirect_uri is required").response(requestID: requestID)
            }
            var bytes: [UInt8] = []
            for _ in 0..<16 { bytes.append(UInt8(truncatingIfNeeded: random.next())) }
            let code = Data(bytes).base64EncodedString()  // 16 bytes: ends in "==", as Intercom codes may
            authorizationCodes[code] = "sim-oauth-" + bytes.map { String($0, radix: 16) }.joined()
            var items = components.queryItems ?? []
            items.append(URLQueryItem(name: "code", value: code))
            if let state = request.query["state"] { items.append(URLQueryItem(name: "state", value: state)) }
            components.percentEncodedQuery = items.map { "\(Self.formEncode($0.name))=\(Self.formEncode($0.value ?? ""))" }
                .joined(separator: "&")
            return SimResponse(status: 302, headers: [("Location", components.string ?? redirect)], body: "")
        }
        let form = Self.formFields(request)
        guard request.method == "POST", form["client_id"] == configuration.clientID,
            form["client_secret"] == configuration.clientSecret, let code = form["code"],
            let token = authorizationCodes.removeValue(forKey: code)
        else {
            return APIError(401, "unauthorized", "Unauthorized Code").response(requestID: requestID)
        }
        tokens.insert(token)
        return .json(.object(["token_type": "Bearer", "token": .string(token), "access_token": .string(token)]))
    }

    static func formEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// Fields of a form-encoded (or JSON) body.
    static func formFields(_ request: SimRequest) -> [String: String] {
        if request.headers["content-type"]?.contains("json") == true,
            case .object(let fields)? = try? JSONValue(jsonText: request.bodyText)
        {
            return fields.compactMapValues(\.string)
        }
        var fields: [String: String] = [:]
        for pair in request.bodyText.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map {
                String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
            }
            fields[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        return fields
    }
}

/// An opaque pagination cursor: a position and the page it ended.
struct Cursor {
    var value: Int
    var page: Int

    init(value: Int, page: Int) {
        self.value = value
        self.page = page
    }

    init?(token: String) {
        guard let data = Data(base64Encoded: token), let text = String(data: data, encoding: .utf8) else { return nil }
        let parts = text.split(separator: ":")
        guard parts.count == 3, parts[0] == "sim", let value = Int(parts[1]), let page = Int(parts[2]) else { return nil }
        self.value = value
        self.page = page
    }

    var token: String { Data("sim:\(value):\(page)".utf8).base64EncodedString() }
}

/// A thrown error from the in-process control API.
public struct SimulatorError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// The sorted answers of the searches walked lately, each valid until anything search sees
/// changes. Several: a partitioned pull walks dozens of queries at once, page by page, and a
/// cache of one answered every page by filtering and sorting its range again.
struct SearchCache {
    private var entries: [String: (revision: Int, matches: [SimContact], used: Int)] = [:]
    private var uses = 0
    /// Contacts held in all answers together, at most: a few times a large workspace.
    static let capacity = 2_000_000

    mutating func matches(for key: String, revision: Int) -> [SimContact]? {
        guard let entry = entries[key], entry.revision == revision else { return nil }
        uses += 1
        entries[key]?.used = uses
        return entry.matches
    }

    mutating func keep(_ matches: [SimContact], for key: String, revision: Int) {
        // Answers of an older revision are stale; then the least recently used go first.
        entries = entries.filter { $0.key != key && $0.value.revision == revision }
        var held = entries.values.reduce(0) { $0 + $1.matches.count }
        while held + matches.count > Self.capacity, let oldest = entries.min(by: { $0.value.used < $1.value.used }) {
            held -= oldest.value.matches.count
            entries.removeValue(forKey: oldest.key)
        }
        uses += 1
        entries[key] = (revision, matches, uses)
    }
}
