import Foundation
import Testing

@testable import IntercomSync

/// A mirror reached by another name: a symbolic link opens the file it points to, so the lock
/// and the private modes hold whichever name is used; and a new mirror created by several
/// processes at once.
@Suite struct MirrorPathTests {
    @Test func aLinkOpensTheMirrorItPointsToAndSharesItsLock() throws {
        let folder = try TemporaryDirectory()
        let real = folder.path("mirror.sqlite")
        let link = folder.path("link.sqlite")
        let mirror = try ContactMirror.open(at: real, mode: .createIfMissing)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "mirror.sqlite")
        let linked = try ContactMirror.open(at: link, mode: .existing)
        #expect(linked.path == real)

        let lock = try MirrorLock.acquire(mirror, purpose: "test sync")
        #expect(throws: SyncError.self) { _ = try MirrorLock.acquire(linked, purpose: "second sync") }
        #expect(MirrorLock.holder(ofMirrorAt: link)?.hasPrefix("test sync") == true)
        withExtendedLifetime(lock) {}
    }

    /// A link to a file that does not exist yet makes the mirror there, its owner's alone.
    @Test func aDanglingLinkMakesAPrivateMirrorAtItsTarget() throws {
        let folder = try TemporaryDirectory()
        let link = folder.path("link.sqlite")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: folder.path("target.sqlite"))
        let previous = umask(0o022)
        defer { umask(previous) }
        let mirror = try ContactMirror.open(at: link, mode: .createIfMissing)
        _ = try mirror.stageContact(ContactDraft(email: "a@example.com"), now: 1)
        #expect(mirror.path == folder.path("target.sqlite"))
        for file in ["target.sqlite", "target.sqlite-wal", "target.sqlite-shm"] {
            let mode = try FileManager.default.attributesOfItem(atPath: folder.path(file))[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(file): \(String(mode ?? 0, radix: 8))")
        }
        #expect(ContactMirror.looseFiles(at: link).isEmpty)
    }

    /// Several opens of one new mirror at the same moment (two commands started together on a
    /// fresh machine) all succeed: the second's migrations go on from the first's.
    @Test func openingANewMirrorFromSeveralPlacesAtOnceWorks() async throws {
        for round in 0..<5 {
            let folder = try TemporaryDirectory()
            let path = folder.path("mirror.sqlite")
            let results = await withTaskGroup(of: String?.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        await withCheckedContinuation { continuation in
                            Thread {
                                do {
                                    let mirror = try ContactMirror.open(at: path, mode: .createIfMissing)
                                    try mirror.close()
                                    continuation.resume(returning: nil)
                                } catch {
                                    continuation.resume(returning: "\(error)")
                                }
                            }.start()
                        }
                    }
                }
                return await group.reduce(into: [String]()) { if let failure = $1 { $0.append(failure) } }
            }
            #expect(results.isEmpty, "round \(round): \(results)")
        }
    }
}
