import Foundation
import Testing

/// A folder that can be made read-only for real: a small tmpfs remounted read-only when the
/// tests run as root (who may write any file, whatever its mode), else plain permissions.
final class ReadOnlyFolder {
    let path: String
    private let mounted: Bool

    /// Mounting needs root and a kernel that lets this container mount tmpfs.
    static let canMount: Bool = {
        guard getuid() == 0 else { return false }
        let probe = FileManager.default.temporaryDirectory.appendingPathComponent("mount-probe-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: probe) }
        guard ReadOnlyFolder.shell("mount -t tmpfs -o size=1m tmpfs '\(probe)'") else { return false }
        return ReadOnlyFolder.shell("umount '\(probe)'")
    }()

    /// Whether a read-only folder can be made here at all.
    static var available: Bool { getuid() != 0 || canMount }

    /// A folder (of `sizeMB`, when mounted), writable until `seal()`.
    init(inside parent: URL, sizeMB: Int = 16) throws {
        path = parent.appendingPathComponent("medium").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        mounted = getuid() == 0
        if mounted, !Self.shell("mount -t tmpfs -o size=\(sizeMB)m tmpfs '\(path)'") {
            throw CocoaError(.fileWriteNoPermission)
        }
    }

    func seal() {
        if mounted {
            _ = Self.shell("mount -o remount,ro '\(path)'")
        } else {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
                chmod(path + "/" + name, 0o444)
            }
            chmod(path, 0o555)
        }
    }

    deinit {
        if mounted {
            _ = Self.shell("umount '\(path)'")
        } else {
            chmod(path, 0o755)
        }
    }

    @discardableResult
    static func shell(_ command: String) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command + " 2>/dev/null"]
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }
}

@Suite(.enabled(if: ReadOnlyFolder.available, "needs root with tmpfs mounts, or a user without root"))
struct ReadOnlyMirrorTests {
    static func snapshot(_ folder: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: folder) {
            files[name] = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + name))
        }
        return files
    }

    @Test func aReadOnlyMirrorCanBeQueriedAndWritesSayWhy() throws {
        let workspace = try Workspace(contacts: 40)
        let medium = try ReadOnlyFolder(inside: workspace.folder)
        let db = medium.path + "/mirror.sqlite"
        #expect(try CLI.run(["generate", "--count", "40", "--seed", "3", "--into-mirror", "--db", db]).status == 0)
        #expect(try CLI.run(["contacts", "create", "--email", "kept@example.com", "--db", db]).status == 0)
        let expectedQuery = try CLI.run(["contacts", "query", "--limit", "50", "--format", "json", "--db", db])
        medium.seal()
        let before = try Self.snapshot(medium.path)

        let query = try CLI.run(["contacts", "query", "--limit", "50", "--format", "json", "--db", db])
        #expect(query.status == 0, "\(query.stderr)")
        #expect(query.stdout == expectedQuery.stdout)
        let search = try CLI.run(["contacts", "query", "--search", "kept", "--db", db])
        #expect(search.status == 0, "\(search.stderr)")
        #expect(search.stdout.contains("kept@example.com"))
        let status = try CLI.run(["status", "--json", "--db", db])
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("\"synced\":40"), "\(status.stdout)")
        let page = try #require(try JSONSerialization.jsonObject(with: Data(query.stdout.utf8)) as? [String: Any])
        let contacts = try #require(page["contacts"] as? [[String: Any]])
        let synced = try #require(contacts.compactMap { $0["id"] as? String }.first { !$0.hasPrefix("local_") })
        let get = try CLI.run(["contacts", "get", synced, "--offline", "--json", "--db", db])
        #expect(get.status == 0, "\(get.stderr)")
        #expect(get.stdout.contains(synced))
        #expect(try CLI.run(["outbox", "list", "--db", db]).status == 0)
        let doctor = try CLI.run(["doctor", "--db", db])
        #expect(doctor.status == 0, "\(doctor.stderr)")
        #expect(doctor.stderr.contains("read-only here"))

        for command in [
            ["contacts", "create", "--email", "new@example.com"], ["outbox", "retry", "--unknown"],
            ["sync", "--base-url", "http://127.0.0.1:9", "--token", "t"], ["doctor", "--repair"],
        ] {
            let refused = try CLI.run(command + ["--db", db])
            #expect(refused.status == 1, "\(command): \(refused.stderr)")
            #expect(refused.stderr.contains("the mirror is read-only here"), "\(command): \(refused.stderr)")
            #expect(!refused.stderr.contains("SQL"), "\(refused.stderr)")
        }
        #expect(try Self.snapshot(medium.path) == before, "nothing on the medium changed, and nothing was added")
    }
}

/// A disk that fills: a small tmpfs, which only root can mount.
@Suite(.enabled(if: ReadOnlyFolder.canMount, "needs root with tmpfs mounts"))
struct FullDiskTests {
    @Test func anImportThatFillsTheDiskSaysWhatItKeptAndGoesOnAfterwards() throws {
        let workspace = try Workspace(contacts: 0)
        let csv = workspace.folder.appendingPathComponent("contacts.csv").path
        #expect(try CLI.run(["generate", "--count", "60000", "--format", "csv", "--out", csv]).status == 0)
        let disk = try ReadOnlyFolder(inside: workspace.folder, sizeMB: 10)
        let db = disk.path + "/mirror.sqlite"
        let full = try CLI.run(["contacts", "import", csv, "--db", db])
        #expect(full.status == 1)
        #expect(!full.stderr.contains("SQL"), "\(full.stderr)")
        let pattern = /the disk is full: the first (\d+) rows of the file were committed \((\d+) new contacts, kept\)/
        let match = try #require(full.stderr.firstMatch(of: pattern), "\(full.stderr)")
        let kept = try #require(Int(match.2))
        #expect(kept > 0 && kept < 60000 && kept % 20000 == 0, "whole batches are kept: \(kept)")
        #expect(full.stderr.contains("run the same command again"))
        let status = try CLI.run(["status", "--json", "--db", db])
        #expect(status.stdout.contains("\"pending\":\(kept)"), "\(status.stdout)")
        let doctor = try CLI.run(["doctor", "--db", db])
        #expect(doctor.status == 0, "the mirror is sound after the full disk: \(doctor.stdout) \(doctor.stderr)")

        #expect(ReadOnlyFolder.shell("mount -o remount,size=96m '\(disk.path)'"))
        let again = try CLI.run(["contacts", "import", csv, "--db", db, "--json"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("\"duplicates\":\(kept)"), "\(again.stdout)")
        #expect(again.stdout.contains("\"imported\":\(60000 - kept)"), "\(again.stdout)")
    }
}
