/// A CSV file that cannot be imported at all (a bad row is a `ContactImport.Rejection`, not this).
public struct ImportError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The file has no rows, not even a header.
        case emptyFile
        /// The header row itself is malformed.
        case badHeader
        /// No column maps to the email.
        case noEmailColumn
        /// A mapping names no column or no field, or two columns claim one field.
        case badMapping
        /// The disk filled part-way. Unlike the others, rows may have been committed before it:
        /// the description says how many, and that running the import again goes on from there.
        case diskFull
        /// The file cannot be opened or read.
        case unreadableFile
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
