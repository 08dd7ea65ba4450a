/// A CSV file that cannot be imported at all (a bad row is a `ContactImport.Rejection`, not this).
public struct ImportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure it is. New kinds may come with new versions: a `switch` over it
    /// needs a `default:`, which a new kind does not break.
    public struct Kind: ErrorKind {
        public let name: String

        private init(_ name: String) { self.name = name }

        /// The file has no rows, not even a header.
        public static let emptyFile = Kind("emptyFile")
        /// The header row itself is malformed.
        public static let badHeader = Kind("badHeader")
        /// No column maps to the email.
        public static let noEmailColumn = Kind("noEmailColumn")
        /// A mapping names no column or no field, or two columns claim one field.
        public static let badMapping = Kind("badMapping")
        /// The disk filled part-way. Unlike the others, rows may have been committed before it:
        /// the description says how many, and that running the import again goes on from there.
        public static let diskFull = Kind("diskFull")
        /// The file cannot be opened or read.
        public static let unreadableFile = Kind("unreadableFile")
    }

    public var kind: Kind
    public var description: String
    /// What would let the file in.
    public var remedy: ErrorRemedy?

    public init(_ kind: Kind, _ description: String, remedy: ErrorRemedy? = nil) {
        self.kind = kind
        self.description = description
        self.remedy = remedy
    }
}

extension ImportError: IntercomSyncError {}
