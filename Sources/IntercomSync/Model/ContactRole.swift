/// Intercom's two kinds of contact.
public enum ContactRole: String, Sendable, Codable, CaseIterable {
    case user
    case lead
}

/// Where a mirrored contact stands relative to Intercom.
public enum ContactState: String, Sendable, Codable, CaseIterable {
    /// The mirror holds the server's version.
    case synced
    /// Written locally and not yet pushed; server versions never overwrite it.
    case pending
    /// Gone from Intercom (deleted, merged away, or missing from a complete full pull).
    case tombstoned
}
