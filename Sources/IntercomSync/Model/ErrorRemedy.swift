/// What would let a refused call succeed. The engine's errors say what failed in their
/// description and carry this, so an app or the command-line tool can offer the fix in its own
/// words (a button, a flag to pass).
public enum ErrorRemedy: Sendable, Equatable {
    /// Sync the mirror: it has nothing, or not the contact asked for, yet.
    case sync
    /// A full pull first: the mirror has never completed one.
    case fullSync
    /// Rebuild what the schema derives from the contacts, which are intact
    /// (the command-line tool's `doctor --repair`).
    case repairSchema
    /// Start over: move the file aside and sync a new mirror. What the damage took cannot be
    /// rebuilt.
    case newMirror
    /// Open the mirror where it can be written: the call writes.
    case openWritable
    /// Use a newer version of the engine: a newer one wrote the mirror.
    case upgrade
    /// Stage it anyway, with a second contact of the same email (`allowingDuplicateEmail`).
    case allowDuplicateEmail
    /// Create the contact first, with this email.
    case createContact(email: String)
    /// Drop the entries that wait for this one with it (`cascade`).
    case cascade
    /// Wait for the process that holds the mirror, or wait longer for it.
    case waitForLock
    /// Confirm that this many contacts really were deleted (`SyncSafety.allowMassDelete`).
    case allowMassDelete
    /// Use another mirror for that workspace, or rebind this one to it (`SyncSafety.rebind`).
    case rebind
    /// Check the API base URL: the server does not answer as Intercom's API does.
    case checkBaseURL
    /// Connect again: Intercom refused the access token.
    case reconnect
    /// Give a connection: the mirror was opened without one.
    case connect
    /// Say which column holds what (an import's `mappings`).
    case mapColumns
    /// Pick another mirror file.
    case otherMirror
    /// Run the same thing again later: the server asked to wait, or answered what cannot be
    /// walked now. Nothing is lost, and the work resumes.
    case tryLater
    /// Find the contacts whose stored data is damaged and have them fetched again (`doctor`).
    case repairContacts
    /// Check the mirror file: what is damaged, and what can be saved (`doctor`).
    case checkMirror
    /// Free some space on the disk, then run the same thing again: what was committed is kept.
    case freeSpace
}
