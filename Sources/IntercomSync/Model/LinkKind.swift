/// What a contact's link points at.
public enum LinkKind: Int, Sendable, CaseIterable, Codable {
    case tag = 0
    case company = 1
    case segment = 2

    /// The contact's own list on Intercom, where a body lists only some (`/contacts/{id}/tags`).
    var contactPath: String {
        switch self {
        case .tag: "tags"
        case .company: "companies"
        case .segment: "segments"
        }
    }
}
