import Foundation
import Testing

@testable import IntercomSync

/// The store's record of the workspace a mirror belongs to (`ContactMirror.bind(to:rebind:)`).
@Suite struct WorkspaceBindingStoreTests {
    static func identity(_ workspace: String) -> WorkspaceIdentity {
        WorkspaceIdentity(
            binding: WorkspaceBinding(workspaceID: workspace, origin: "http://127.0.0.1:1"), adminID: "7",
            timezone: "UTC")
    }

    /// A rebind to another workspace forgets every pull's progress: the other workspace's
    /// cursors, ranges and watermark would skip or misplace this one's contacts.
    @Test func aRebindToAnotherWorkspaceForgetsEveryPullsProgress() async throws {
        let mirror = try ContactMirror.inMemory()
        try await mirror.bind(to: Self.identity("first"), rebind: false)
        _ = try await mirror.beginFullPull(at: 100)
        let range = PullRange(seq: 1, lower: nil, upper: nil, expected: 10, cursor: "c", fetched: 5)
        try await mirror.planFullPull([range], newestAtStart: 90)
        try mirror.setSyncState(.incrementalWatermark, to: "80")
        _ = try await mirror.beginIncrementalPass(from: 70, margin: 0)
        try await mirror.planIncrementalPass([range])

        await #expect(throws: SyncError.self) { try await mirror.bind(to: Self.identity("second"), rebind: false) }
        #expect(try await mirror.pullRanges(.incremental) == [range], "a refusal changes nothing")

        try await mirror.bind(to: Self.identity("second"), rebind: true)
        #expect(try mirror.fullPullProgress() == nil)
        #expect(try await mirror.pullRanges(.fullPull).isEmpty)
        #expect(try await mirror.pullRanges(.incremental).isEmpty)
        #expect(try mirror.incrementalWatermark() == nil)
        for key in [SyncStateKey.incrementalFloor, .incrementalCursor, .incrementalLastTotal, .incrementalPassNewest] {
            #expect(try mirror.syncState(key) == nil, "\(key)")
        }
        #expect(try mirror.syncState(.workspaceID) == "second")
    }
}
