import Foundation
import Testing

@testable import IntercomSync

/// The full pull's progress: one record, changed whole in the transaction of each step.
@Suite struct PullProgressStoreTests {
    static func page(_ ids: ClosedRange<Int>) throws -> ScannedPage {
        let contacts = ids.map { #"{"type":"contact","id":"c\#($0)","role":"user","created_at":1,"updated_at":2}"# }
        return try ScannedPage(#"{"type":"list","data":[\#(contacts.joined(separator: ","))]}"#)
    }

    /// A page commits with the cursor after it, and the last page (no cursor after it) clears
    /// the stored cursor: a resumed walk must not start again after a page already committed.
    @Test func eachPageMovesTheCursorAndTheLastClearsIt() async throws {
        let mirror = try ContactMirror.inMemory()
        let started = try await mirror.beginFullPull(at: 100)
        try await mirror.planFullPull([], newestAtStart: 90)
        _ = try await mirror.commitListPage(try Self.page(1...2), fetchedAt: 100, markingSeen: true, next: "after-2")
        var progress = try #require(try mirror.fullPullProgress())
        #expect(progress.listCursor == "after-2" && progress.newestAtStart == 90 && progress.startedAt == started.startedAt)
        #expect(try mirror.syncState(.fullPullCursor) == "after-2")

        _ = try await mirror.commitListPage(try Self.page(3...4), fetchedAt: 100, markingSeen: true, next: nil)
        progress = try #require(try mirror.fullPullProgress())
        #expect(progress.listCursor == nil && progress.newestAtStart == 90, "the other fields kept")
        #expect(try mirror.syncState(.fullPullCursor) == nil, "the key itself removed")

        try await mirror.markFullPullWalked()
        progress = try #require(try mirror.fullPullProgress())
        #expect(progress.walked && progress.listCursor == nil && progress.newestAtStart == 90)
    }

    /// A step of a pull that another process has ended writes nothing.
    @Test func aStepOfAnEndedPullFailsAndWritesNothing() async throws {
        let mirror = try ContactMirror.inMemory()
        await #expect(throws: SyncError.self) {
            _ = try await mirror.commitListPage(try Self.page(1...1), fetchedAt: 100, markingSeen: true, next: "x")
        }
        #expect(try mirror.syncState(.fullPullCursor) == nil)
        #expect(try await mirror.contact(id: "c1") == nil, "the page's contacts went with the failed step")
    }
}
