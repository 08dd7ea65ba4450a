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
}
