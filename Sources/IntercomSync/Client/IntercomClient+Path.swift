import Foundation

extension IntercomClient {
    /// An id as one component of a request's path: percent-encoded, a slash included, so that
    /// no id can reach another path.
    static func pathComponent(_ id: String) -> String {
        id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? id
    }
}
