/// A contact Intercom sent that the mirror cannot store (a role it does not know, a time that is
/// not a whole number of seconds, no id): left out of the mirror, and reported, while the rest
/// of its page is stored.
public struct MalformedContact: Sendable, Equatable {
    /// Its id, when it has one.
    public var id: String?
    /// What is wrong with it.
    public var reason: String

    public init(id: String?, reason: String) {
        self.id = id
        self.reason = reason
    }
}
