import Foundation
import GRDB

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

    /// The binding recorded in the mirror, if any.
    static func recorded(in db: Database) throws -> WorkspaceBinding? {
        guard let id = try ContactMirror.syncState(.workspaceID, in: db),
            let origin = try ContactMirror.syncState(.workspaceOrigin, in: db)
        else { return nil }
        return WorkspaceBinding(workspaceID: id, origin: origin)
    }

    /// Asks the server which workspace it is, and checks it against the mirror's binding: binds
    /// a mirror that has none, refuses a mismatch, and with `rebind` records the new one. A
    /// rebind to another workspace also forgets where the pulls stood, so the next sync walks
    /// the new workspace in full. Returns the workspace's binding.
    @discardableResult
    static func check(_ mirror: ContactMirror, client: IntercomClient, rebind: Bool) async throws -> WorkspaceBinding {
        let me = try await client.sendJSON("GET", "/me", maximumBodyBytes: HTTPRequest.maximumObjectBytes)
        let admin = try? JSONValue(jsonText: me.text)
        guard let id = admin?["app"]?["id_code"]?.string, !id.isEmpty else {
            throw IntercomError(
                kind: .permanent, status: me.response.status, code: "malformed_response",
                message: "GET /me did not name a workspace (app.id_code): is this Intercom's API?",
                operation: "GET /me")
        }
        let server = WorkspaceBinding(workspaceID: id, origin: origin(of: client.connection.baseURL))
        let adminID = admin?["id"]?.string ?? admin?["id"]?.int.map(String.init)
        try await mirror.writer.write { db in
            let recorded = try recorded(in: db)
            if let recorded, recorded != server {
                guard rebind else { throw refusal(recorded: recorded, server: server) }
                if recorded.workspaceID != server.workspaceID {
                    for key in [
                        SyncStateKey.incrementalWatermark, .incrementalFloor, .incrementalCursor, .incrementalPassNewest,
                        .fullPullStartedAt, .fullPullCursor, .adminID, .workspaceTimezone,
                    ] {
                        try ContactMirror.setSyncState(key, to: nil, in: db)
                    }
                    try ContactMirror.clearSeen(in: db)
                }
            }
            if recorded != server {
                try ContactMirror.setSyncState(.workspaceID, to: server.workspaceID, in: db)
                try ContactMirror.setSyncState(.workspaceOrigin, to: server.origin, in: db)
            }
            if let adminID, try ContactMirror.syncState(.adminID, in: db) == nil {
                try ContactMirror.setSyncState(.adminID, to: adminID, in: db)
            }
            if let timezone = admin?["app"]?["timezone"]?.string {
                try ContactMirror.setSyncState(.workspaceTimezone, to: timezone, in: db)
            }
        }
        return server
    }

    private static func refusal(recorded: WorkspaceBinding, server: WorkspaceBinding) -> SyncError {
        let what =
            recorded.workspaceID != server.workspaceID
            ? "workspace \(server.workspaceID) at \(server.origin), but this mirror holds workspace \(recorded.workspaceID) "
                + "(from \(recorded.origin))"
            : "\(server.origin), but this mirror was synced from \(recorded.origin) (the same workspace, \(server.workspaceID))"
        return SyncError(
            .foreignWorkspace,
            "the server is \(what). Nothing was changed", remedy: .rebind)
    }
}
