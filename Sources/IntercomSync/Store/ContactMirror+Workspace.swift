import Foundation
import GRDB

/// The workspace a mirror belongs to (`WorkspaceBinding`), in `sync_state`.
extension ContactMirror {
    /// Checks the server's identity against the mirror's binding, in one transaction: binds a
    /// mirror that has none, refuses a mismatch (nothing is written), and with `rebind` records
    /// the new one. A rebind to another workspace also forgets where the pulls stood, so the next
    /// sync walks the new workspace in full. Returns the server's binding.
    @discardableResult
    package func bind(to server: WorkspaceIdentity, rebind: Bool) async throws -> WorkspaceBinding {
        try await writer.write { db in
            let recorded = try Self.recordedBinding(in: db)
            if let recorded, recorded != server.binding {
                guard rebind else { throw Self.refusal(recorded: recorded, server: server.binding) }
                if recorded.workspaceID != server.binding.workspaceID {
                    // Every pull's progress belongs to the other workspace: its cursors, ranges
                    // and watermark would skip or misplace this one's contacts.
                    try FullPullProgress.write(nil, in: db)
                    try IncrementalProgress.write(nil, in: db)
                    try PullRange.save([], table: .fullPull, in: db)
                    try PullRange.save([], table: .incremental, in: db)
                    for key in [SyncStateKey.incrementalWatermark, .incrementalPassNewest, .adminID, .workspaceTimezone] {
                        try Self.setSyncState(key, to: nil, in: db)
                    }
                    try Self.clearSeen(in: db)
                }
            }
            if recorded != server.binding {
                try Self.setSyncState(.workspaceID, to: server.binding.workspaceID, in: db)
                try Self.setSyncState(.workspaceOrigin, to: server.binding.origin, in: db)
            }
            if let adminID = server.adminID, try Self.syncState(.adminID, in: db) == nil {
                try Self.setSyncState(.adminID, to: adminID, in: db)
            }
            if let timezone = server.timezone {
                try Self.setSyncState(.workspaceTimezone, to: timezone, in: db)
            }
        }
        return server.binding
    }

    /// The workspace the mirror is bound to, if any.
    package func workspaceBinding() throws -> WorkspaceBinding? {
        try writer.read { db in try Self.recordedBinding(in: db) }
    }

    /// The binding recorded in the mirror, if any.
    static func recordedBinding(in db: Database) throws -> WorkspaceBinding? {
        guard let id = try syncState(.workspaceID, in: db), let origin = try syncState(.workspaceOrigin, in: db) else {
            return nil
        }
        return WorkspaceBinding(workspaceID: id, origin: origin)
    }

    private static func refusal(recorded: WorkspaceBinding, server: WorkspaceBinding) -> SyncError {
        let what =
            recorded.workspaceID != server.workspaceID
            ? "workspace \(server.workspaceID) at \(server.origin), but this mirror holds workspace \(recorded.workspaceID) "
                + "(from \(recorded.origin))"
            : "\(server.origin), but this mirror was synced from \(recorded.origin) (the same workspace, \(server.workspaceID))"
        return SyncError(.foreignWorkspace, "the server is \(what). Nothing was changed", remedy: .rebind)
    }
}
