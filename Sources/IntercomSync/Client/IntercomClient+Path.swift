import Foundation

extension IntercomClient {
    /// An id as one component of a request's path: percent-encoded, a slash included, and an id
    /// of dots alone (`.`, `..`) as `%2E`s, which no client resolves as a step up: no id can
    /// reach another path. A request's path is taken as it is given (`makeRequest`), so every
    /// id in one goes through here.
    static func pathComponent(_ id: String) -> String {
        if !id.isEmpty, id.allSatisfy({ $0 == "." }) { return String(repeating: "%2E", count: id.count) }
        return id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/")))
            ?? id
    }
}
