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
/// fault generator. Its state lives here; what each route does lives in one extension a
/// resource (`SimulatedWorkspace+Contacts.swift`, `+Search`, `+Tags`, `+Segments`,
/// `+Companies`, `+Messages`, `+Admins`, `+OAuth`, `+Control`; `+Requests` for what the
/// middleware asks, `+SeededRelations` for the seeded tags and companies), and `SimRoutes`
/// says which answers what.
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
    /// Notes by id, and the next id to give (`+Notes`).
    var notes: [String: SimNote] = [:]
    var nextNoteID = 9_000_000
    /// Tags by id, in creation order, and the contacts carrying each (`+Tags`).
    var tags: [String: SimTag] = [:]
    var tagOrder: [String] = []
    var taggedContacts: [String: Set<String>] = [:]
    var nextTagID = 7_000_000
    /// Companies by id, in creation order, by `company_id`, their contacts, the scrolls under
    /// way (`+Companies`).
    var companies: [String: SimCompany] = [:]
    var companyOrder: [String] = []
    var byCompanyID: [String: String] = [:]
    var companyContacts: [String: Set<String>] = [:]
    var companyScrolls: [String: Int] = [:]
    var nextCompanySerial = 0
    /// The segments, fixed rules made with the workspace (`+Segments`).
    var segments: [SimSegment] = []
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
        segments = Self.segments(for: configuration, startingAt: clock.now)
        let relations = Self.seededRelations(for: configuration, now: clock.now, contactIDs: order)
        for tag in relations.tags {
            tags[tag.id] = tag
            tagOrder.append(tag.id)
        }
        nextTagID += relations.tags.count
        for company in relations.companies {
            companies[company.id] = company
            companyOrder.append(company.id)
            byCompanyID[company.companyID] = company.id
        }
        for (id, tagIDs) in relations.tagsByContact {
            contacts[id]?.tagIDs = tagIDs
            for tag in tagIDs { taggedContacts[tag, default: []].insert(id) }
        }
        for (id, companyIDs) in relations.companiesByContact {
            contacts[id]?.companyIDs = companyIDs
            for company in companyIDs { companyContacts[company, default: []].insert(id) }
        }
        if configuration.searchLagSeconds > 0 {
            for id in order { searchVisible[id] = contacts[id] }
        }
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
}
