import Foundation
import IntercomJSON

/// A segment of the workspace: a rule over its contacts, which Intercom evaluates itself.
struct SimSegment: Sendable {
    enum Rule: Sendable {
        case role(String)
        case unsubscribed
        case seenSince(Int)
        case tagged(String)
    }

    var id: String
    var name: String
    /// `user` or `contact` (leads), as Intercom's segments say whom they hold.
    var personType: String
    var createdAt: Int
    var rule: Rule
}

/// Which contacts are in which segment, for one search or one listing.
struct SegmentMembership: Sendable {
    let segments: [String: SimSegment]
    /// Tag ids by lower-cased name, for the segments defined by a tag.
    let tagIDs: [String: String]

    func contains(_ contact: SimContact, segmentID: String) -> Bool {
        guard let segment = segments[segmentID] else { return false }
        switch segment.rule {
        case .role(let role): return contact.role == role
        case .unsubscribed: return contact.unsubscribedFromEmails
        case .seenSince(let time): return (contact.lastSeenAt ?? 0) >= time
        case .tagged(let name): return tagIDs[name.lowercased()].map(contact.tagIDs.contains) ?? false
        }
    }
}

/// Segments: `GET /segments` (with `include_count=true`, how many contacts each holds) and
/// `GET /contacts/{id}/segments`; search filters by `segment_id`. The simulator's segments are
/// fixed rules, so a contact enters or leaves one as it changes (its role, its subscription,
/// its tags) without its segments changing its `updated_at`, as on Intercom.
extension SimulatedWorkspace {
    /// The workspace's segments, made with it.
    static func segments(for configuration: SimulatorConfiguration, startingAt now: Int) -> [SimSegment] {
        let prefix = "6762f25c1bb69f9f2193bc"
        return [
            SimSegment(
                id: prefix + "01", name: "Leads", personType: "contact", createdAt: now - 86_400 * 400, rule: .role("lead")),
            SimSegment(
                id: prefix + "02", name: "Active in the last 30 days", personType: "user", createdAt: now - 86_400 * 400,
                rule: .seenSince(now - 86_400 * 30)),
            SimSegment(
                id: prefix + "03", name: "Unsubscribed", personType: "user", createdAt: now - 86_400 * 200, rule: .unsubscribed),
            SimSegment(id: prefix + "04", name: "VIP", personType: "user", createdAt: now - 86_400 * 100, rule: .tagged("VIP")),
        ]
    }

    func segmentMembership() -> SegmentMembership {
        SegmentMembership(
            segments: Dictionary(uniqueKeysWithValues: segments.map { ($0.id, $0) }),
            tagIDs: Dictionary(
                tagOrder.compactMap { tags[$0] }.map { ($0.name.lowercased(), $0.id) }, uniquingKeysWith: { first, _ in first }))
    }

    func segmentJSON(_ segment: SimSegment, count: Int? = nil) -> JSONValue {
        var fields: [String: JSONValue] = [
            "type": "segment", "id": .string(segment.id), "name": .string(segment.name),
            "created_at": .int(Int64(segment.createdAt)), "updated_at": .int(Int64(segment.createdAt)),
            "person_type": .string(segment.personType),
        ]
        if let count { fields["count"] = .int(Int64(count)) }
        return .object(fields)
    }

    func listSegments(_ call: SimCall) -> SimResponse {
        let counting = call.request.query["include_count"] == "true"
        var counts: [String: Int] = [:]
        if counting {
            let membership = segmentMembership()
            for (id, contact) in contacts where !isArchived(id) {
                for segment in segments where membership.contains(contact, segmentID: segment.id) {
                    counts[segment.id, default: 0] += 1
                }
            }
        }
        let listed = segments.map { segmentJSON($0, count: counting ? counts[$0.id, default: 0] : nil) }
        return .json(.object(["type": "segment.list", "segments": .array(listed), "pages": .object([:])]))
    }

    func contactSegments(_ call: SimCall) throws -> SimResponse {
        guard let contact = live(call.parameter("id")) else { throw APIError.notFound() }
        let membership = segmentMembership()
        let data = segments.filter { membership.contains(contact, segmentID: $0.id) }.map { segmentJSON($0) }
        return .json(.object(["type": "list", "data": .array(data)]))
    }

    /// The workspace's segments, as (id, name), for tests.
    public func segmentList() -> [(id: String, name: String)] {
        segments.map { ($0.id, $0.name) }
    }
}
