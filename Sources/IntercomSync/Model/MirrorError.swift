/// Why a mirror could not be opened or written. Carries the path and the detail a person needs
/// to act on it.
public struct MirrorError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The folder that should hold the mirror does not exist.
        case missingDirectory
        /// No mirror exists at the path, and the command does not create one.
        case missingMirror
        /// The file is not an SQLite database, or is one that intercom-sync did not write.
        case notAMirror
        /// SQLite reports the file as damaged.
        case corrupt
        /// The mirror was migrated by a newer intercom-sync than this one.
        case newerSchema
        /// A table, index or trigger is missing or altered (`SchemaDamage`).
        case damagedSchema
        /// The mirror cannot be written here (a read-only file, folder or file system), and the
        /// command must write.
        case readOnly
        /// An Intercom page or contact body could not be stored as it is malformed.
        case malformedResponse
    }

    public var kind: Kind
    public var path: String?
    public var detail: String
    /// What would fix it, when something would.
    public var remedy: ErrorRemedy?

    public init(_ kind: Kind, path: String? = nil, detail: String, remedy: ErrorRemedy? = nil) {
        self.kind = kind
        self.path = path
        self.detail = detail
        self.remedy = remedy
    }

    public var description: String {
        guard let path else { return detail }
        return "\(path): \(detail)"
    }
}
