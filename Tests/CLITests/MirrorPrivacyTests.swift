import Foundation
import Testing

/// The mirror and the files written beside it hold customers' names, emails and phones: they are
/// readable by their owner alone, whatever the umask, and `doctor` reports (and repairs) a mirror
/// that other users can read.
@Suite struct MirrorPrivacyTests {
    static func mode(_ path: String) throws -> Int {
        try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    @Test func aNewMirrorItsFolderAndItsErrorsFileAreTheOwnersAlone() throws {
        let workspace = try Workspace(contacts: 0)
        let data = workspace.folder.appendingPathComponent("data").path
        let environment = ["XDG_DATA_HOME": data]
        let created = try CLI.run(["contacts", "create", "--email", "ada@example.com"], environment: environment)
        #expect(created.status == 0, "\(created.stderr)")
        let folder = data + "/intercom-sync"
        let mirror = folder + "/mirror.sqlite"
        #expect(try Self.mode(folder) == 0o700, "the folder the tool made")
        #expect(try Self.mode(mirror) == 0o600)

        let csv = ImportCommandTests.fixture("odd-header.csv")
        let errors = workspace.folder.appendingPathComponent("rejected.csv").path
        let imported = try CLI.run(["contacts", "import", csv, "--errors", errors], environment: environment)
        #expect(imported.status == 3, "a row is rejected: \(imported.stderr)")
        #expect(try Self.mode(errors) == 0o600, "the rejected rows are contacts too")
        // The write-ahead log and its index exist while a connection is open, and take the
        // mirror's mode: a second process reads while the first holds them open.
        let open = try Workspace(contacts: 0)
        #expect(try CLI.run(["generate", "--count", "50", "--into-mirror", "--db", open.db]).status == 0)
        for file in [open.db, open.db + "-wal", open.db + "-shm"] where FileManager.default.fileExists(atPath: file) {
            #expect(try Self.mode(file) == 0o600, "\(file)")
        }
    }

    @Test func anEmptyFileMadeAMirrorBecomesPrivate() throws {
        let workspace = try Workspace(contacts: 0)
        #expect(FileManager.default.createFile(atPath: workspace.db, contents: Data(), attributes: [.posixPermissions: 0o644]))
        #expect(try CLI.run(["contacts", "create", "--email", "ada@example.com", "--db", workspace.db]).status == 0)
        #expect(try Self.mode(workspace.db) == 0o600)
    }

    @Test func doctorReportsAMirrorOthersCanReadAndRepairMakesItPrivate() throws {
        let workspace = try Workspace(contacts: 20)
        #expect(try Self.mode(workspace.db) == 0o600)
        let sound = try CLI.run(["doctor", "--db", workspace.db])
        #expect(sound.status == 0, "\(sound.stdout) \(sound.stderr)")

        #expect(chmod(workspace.db, 0o644) == 0)
        let check = try CLI.run(["doctor", "--db", workspace.db])
        #expect(check.status == 1)
        #expect(check.stdout.contains("can be read by other users (mode 644)"), "\(check.stdout)")
        #expect(check.stdout.contains("doctor --repair"), "\(check.stdout)")
        let json = try CLI.run(["doctor", "--json", "--db", workspace.db])
        #expect(json.stdout.contains(#""readable_by_others":[{"mode":"644","path":"\#(workspace.db)"}"#), "\(json.stdout)")

        let repaired = try CLI.run(["doctor", "--repair", "--json", "--db", workspace.db])
        #expect(repaired.status == 0, "\(repaired.stdout) \(repaired.stderr)")
        #expect(repaired.stdout.contains(#""made_private":["\#(workspace.db)""#), "\(repaired.stdout)")
        for file in [workspace.db, workspace.db + "-wal", workspace.db + "-shm"]
        where FileManager.default.fileExists(atPath: file) {
            #expect(try Self.mode(file) == 0o600, "\(file)")
        }
        #expect(try CLI.run(["doctor", "--db", workspace.db]).status == 0)
    }

    /// A read while the mirror was 0400 leaves SQLite's -wal and -shm at 0400: once the mirror is
    /// writable again, the next write makes them its owner's to write again rather than failing.
    @Test func sidecarsLeftReadOnlyByAReadOnlySpellAreMadeWritableAgain() throws {
        let workspace = try Workspace(contacts: 5)
        let db = ["--db", workspace.db]
        #expect(try CLI.run(["contacts", "create", "--email", "before@example.com"] + db).status == 0)
        for file in [workspace.db + "-wal", workspace.db + "-shm"] {
            if !FileManager.default.fileExists(atPath: file) { FileManager.default.createFile(atPath: file, contents: Data()) }
            #expect(chmod(file, 0o400) == 0)
        }
        let created = try CLI.run(["contacts", "create", "--email", "after@example.com"] + db)
        #expect(created.status == 0, "\(created.stderr)")
        for file in [workspace.db + "-wal", workspace.db + "-shm"] where FileManager.default.fileExists(atPath: file) {
            #expect(try Self.mode(file) == 0o600, "\(file)")
        }
        #expect(try CLI.contactCounts(workspace.db)["pending"] == 2)
    }
}
