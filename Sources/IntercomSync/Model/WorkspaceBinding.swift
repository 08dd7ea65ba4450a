import Foundation

/// The workspace a mirror belongs to, recorded by its first sync or flush, and checked by every
/// later one before anything is written or sent.
///
/// A full walk tombstones what it does not see, so a walk of the wrong workspace (another
/// login, a mistyped `--base-url`, a proxy answering for something else) would tombstone the
/// whole mirror, and a flush would push its creates and messages to strangers. `GET /me` names
/// the workspace (`app.id_code`); it and the API origin (scheme, host and port) are kept in
/// `sync_state`, and a mismatch is refused unless the caller asks to rebind.
package struct WorkspaceBinding: Sendable, Equatable {
    package var workspaceID: String
    /// `https://api.intercom.io`, `http://127.0.0.1:8700`.
    package var origin: String

    package init(workspaceID: String, origin: String) {
        self.workspaceID = workspaceID
        self.origin = origin
    }

    /// The origin (scheme, host, port) of `url`.
    package static func origin(of url: URL) -> String {
        var components = URLComponents()
        components.scheme = url.scheme?.lowercased()
        components.host = url.host?.lowercased()
        components.port = url.port
        return components.string ?? url.absoluteString
    }
}

/// What `GET /me` says of the server: its workspace (and API origin), the admin the token
/// belongs to, and the workspace's timezone.
package struct WorkspaceIdentity: Sendable, Equatable {
    package var binding: WorkspaceBinding
    package var adminID: String?
    package var timezone: String?
}
