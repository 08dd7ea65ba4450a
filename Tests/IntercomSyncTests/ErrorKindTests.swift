import Foundation
import IntercomSync
import Testing

/// The errors as an app sees them, through the public API alone (no `@testable` here): a kind is
/// switched over with a `default:`, which a kind added later does not break, and every error
/// says what would let the call succeed.
@Suite struct ErrorKindTests {
    @Test func anAppSwitchesOverAKindWithADefault() {
        func advice(_ error: SyncError) -> String {
            switch error.kind {
            case .busy: "wait"
            case .foreignWorkspace: "rebind"
            default: "other: \(error.kind)"
            }
        }
        #expect(advice(SyncError(.busy, "held")) == "wait")
        #expect(advice(SyncError(.foreignWorkspace, "another")) == "rebind")
        #expect(advice(SyncError(.stalledWalk, "looping")) == "other: stalledWalk")
        #expect(MirrorError.Kind.diskFull != .readOnly && MirrorError.Kind.diskFull == .diskFull)
        #expect(Set([IntercomError.Kind.transient, .permanent, .authentication, .transient]).count == 3)
    }

    @Test func everyErrorCarriesItsRemedy() {
        let errors: [any IntercomSyncError] = [
            SyncError(.busy, "held", remedy: .waitForLock),
            MirrorError(.diskFull, path: "/m.sqlite", detail: "full"),
            ImportError(.noEmailColumn, "no email", remedy: .mapColumns),
            OutboxError(.noSender, "no admin", remedy: .connect),
            AuthError(.noCode, "declined"),
            QueryError("bad cursor"),
        ]
        #expect(errors.map(\.remedy) == [.waitForLock, nil, .mapColumns, .connect, nil, nil])
        #expect(errors[1].description == "/m.sqlite: full")
    }

    /// An app checks a mirror the way `doctor` does, through the facade alone.
    @Test func anAppChecksAMirrorAndFindsWhatIsWrong() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("check-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("mirror.sqlite").path
        let mirror = try await IntercomMirror.open(at: path)
        _ = try await mirror.stageContact(ContactDraft(email: "ada@example.com"))
        try mirror.close()
        #expect(try await IntercomMirror.check(at: path).isSound)
        #expect(chmod(path, 0o644) == 0)
        let loose = try await IntercomMirror.check(at: path)
        #expect(!loose.isSound && loose.readableByOthers.map(\.path).contains(path))
        let repaired = try await IntercomMirror.check(at: path, repairing: true)
        #expect(repaired.isSound && repaired.madePrivate.contains(path), "\(repaired)")
    }
}
