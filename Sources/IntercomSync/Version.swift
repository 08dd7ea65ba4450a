/// Which intercom-sync this is: the library's version, and the version of the mirror's schema
/// it reads and writes (a mirror of a newer schema is refused; an older one is upgraded).
public enum IntercomSyncVersion {
    /// The library's version (semantic versioning).
    public static let library = "0.17.0"
    /// The number of schema migrations the mirror has: a mirror written by this version has
    /// them all.
    public static var schema: Int { MirrorSchema.migrator.migrations.count }
    /// "0.17.0 (mirror schema 16)".
    public static var description: String { "\(library) (mirror schema \(schema))" }
}
