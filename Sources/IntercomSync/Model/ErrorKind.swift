/// The kind of one of the engine's errors (`SyncError.Kind`, `MirrorError.Kind`…): a name,
/// compared by value, whose values are the type's static members. It is not an enum so that a
/// version can add kinds without breaking an app's `switch`, which matches the members it knows
/// and takes a `default:` for the rest:
///
///     switch error.kind {
///     case .busy: showBusy()
///     case .foreignWorkspace: askToRebind()
///     default: show(error.description)
///     }
public protocol ErrorKind: Hashable, Sendable, CustomStringConvertible {
    /// The kind's name, as its static member is spelled (`busy`, `foreignWorkspace`).
    var name: String { get }
}

extension ErrorKind {
    public var description: String { name }
}

/// What every error of the engine is: a description a person can act on, and the remedy that
/// would let the call succeed, when there is one. Each adds what it knows (a kind, the path, the
/// request, the rows).
public protocol IntercomSyncError: Error, Sendable, CustomStringConvertible {
    /// What would let the call succeed, when something would.
    var remedy: ErrorRemedy? { get }
}

extension IntercomError: IntercomSyncError {}
extension MirrorError: IntercomSyncError {}
extension SyncError: IntercomSyncError {}
extension OutboxError: IntercomSyncError {}

extension DraftError: IntercomSyncError {
    /// None: the problems name each field to fix.
    public var remedy: ErrorRemedy? { nil }
}
