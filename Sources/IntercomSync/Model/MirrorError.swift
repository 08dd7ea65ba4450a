/// Why a mirror could not be opened or written. Carries the path and the detail a person needs
/// to act on it.
public struct MirrorError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure it is. New kinds may come with new versions: a `switch` over it
    /// needs a `default:`, which a new kind does not break.
    public struct Kind: ErrorKind {
        public let name: String

        private init(_ name: String) { self.name = name }

        /// The folder that should hold the mirror does not exist.
        public static let missingDirectory = Kind("missingDirectory")
        /// No mirror exists at the path, and the command does not create one.
        public static let missingMirror = Kind("missingMirror")
        /// The file is not an SQLite database, or is one that intercom-sync did not write.
        public static let notAMirror = Kind("notAMirror")
        /// SQLite reports the file as damaged.
        public static let corrupt = Kind("corrupt")
        /// The mirror was migrated by a newer intercom-sync than this one.
        public static let newerSchema = Kind("newerSchema")
        /// A table, index or trigger is missing or altered (`SchemaDamage`).
        public static let damagedSchema = Kind("damagedSchema")
        /// The mirror cannot be written here (a read-only file, folder or file system), and the
        /// command must write.
        public static let readOnly = Kind("readOnly")
        /// An Intercom page or contact body could not be stored as it is malformed.
        public static let malformedResponse = Kind("malformedResponse")
        /// The disk filled: what was committed before is kept and consistent.
        public static let diskFull = Kind("diskFull")
        /// Another process kept the mirror locked past the wait (SQLite's busy timeout).
        public static let busy = Kind("busy")
        /// Any other failure to read or write the file.
        public static let storage = Kind("storage")
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
