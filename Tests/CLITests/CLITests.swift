import Foundation
import Testing

/// Runs the built `intercom-sync` binary, as a user would.
struct CLI {
    static let binary: URL = {
        // The test bundle sits next to the products in .build/<config>/.
        var directory = Bundle.main.bundleURL
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("intercom-sync").path) {
            let parent = directory.deletingLastPathComponent()
            precondition(parent != directory, "intercom-sync binary not found near the test bundle")
            directory = parent
        }
        return directory.appendingPathComponent("intercom-sync")
    }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The mirror's contacts by state, as `status --json` reports them.
    static func contactCounts(_ db: String) throws -> [String: Int] {
        let status = try run(["status", "--json", "--db", db])
        let document = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        return document?["contacts"] as? [String: Int] ?? [:]
    }

    /// The environment the binary runs in: this process's, with `environment` on top, and never
    /// the mirror, token or login of whoever runs the tests.
    static func childEnvironment(_ environment: [String: String]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["INTERCOM_SYNC_DB"] = nil
        env["INTERCOM_ACCESS_TOKEN"] = nil
        env["INTERCOM_SYNC_CREDENTIALS"] =
            FileManager.default.temporaryDirectory.appendingPathComponent(
                "intercom-sync-no-credentials-\(UUID().uuidString)/credentials.json"
            ).path
        env.merge(environment) { $1 }
        return env
    }

    @discardableResult
    static func run(_ arguments: [String], environment: [String: String] = [:], input: Data? = nil) throws -> Result {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.environment = childEnvironment(environment)
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let stdin = Pipe()
        if input != nil { process.standardInput = stdin }
        try process.run()
        if let input {
            // A writer of its own, so a large input cannot deadlock against the output pipes.
            Thread {
                try? stdin.fileHandleForWriting.write(contentsOf: input)
                try? stdin.fileHandleForWriting.close()
            }.start()
        }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self))
    }
}

final class Workspace {
    let folder: URL
    var db: String { folder.appendingPathComponent("mirror.sqlite").path }

    init(contacts: Int = 300) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        if contacts > 0 {
            let result = try CLI.run(["generate", "--count", "\(contacts)", "--seed", "3", "--into-mirror", "--db", db])
            precondition(result.status == 0, result.stderr)
        }
    }

    deinit {
        try? FileManager.default.removeItem(at: folder)
    }
}

@Suite struct CLITests {
    @Test func queryAsJSONPagesWithCursor() throws {
        let workspace = try Workspace()
        let first = try CLI.run(["contacts", "query", "--db", workspace.db, "--limit", "100", "--format", "json"])
        #expect(first.status == 0)
        let page = try #require(try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any])
        let contacts = try #require(page["contacts"] as? [[String: Any]])
        #expect(contacts.count == 100)
        let cursor = try #require(page["next_cursor"] as? String)
        let rest = try CLI.run([
            "contacts", "query", "--db", workspace.db, "--after", cursor, "--limit", "1000", "--format", "ndjson",
        ])
        #expect(rest.status == 0)
        let lines = rest.stdout.split(separator: "\n")
        #expect(lines.count == 200)
        let ids = Set(contacts.compactMap { $0["id"] as? String })
        for line in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(!ids.contains(object["id"] as? String ?? ""))
        }
    }

    @Test func allWalksEveryPage() throws {
        let workspace = try Workspace()
        let result = try CLI.run(["contacts", "query", "--db", workspace.db, "--limit", "7", "--all", "--format", "ndjson"])
        #expect(result.status == 0)
        #expect(Set(result.stdout.split(separator: "\n")).count == 300)
    }

    @Test func csvEscapesFormulaCells() throws {
        let workspace = try Workspace()
        let result = try CLI.run(["contacts", "query", "--db", workspace.db, "--all", "--format", "csv"])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(
            lines.first == "id,external_id,role,email,phone,name,avatar,owner_id,custom_attributes,created_at,updated_at,state")
        // Phones begin with "+": a spreadsheet would read them as formulas.
        #expect(result.stdout.contains(",'+"))
        #expect(!result.stdout.contains(",+"))
    }

    @Test func tableAndFilters() throws {
        let workspace = try Workspace()
        let leads = try CLI.run(["contacts", "query", "--db", workspace.db, "--role", "lead", "--all", "--format", "ndjson"])
        #expect(leads.status == 0)
        #expect(!leads.stdout.isEmpty)
        #expect(leads.stdout.split(separator: "\n").allSatisfy { $0.contains("\"role\":\"lead\"") })
        let table = try CLI.run(["contacts", "query", "--db", workspace.db, "--search", "jose", "--limit", "3"])
        #expect(table.status == 0)
        #expect(table.stdout.hasPrefix("ID"))
        #expect(table.stdout.contains("José"))
    }

    @Test func getOfflineShowsOneContact() throws {
        let workspace = try Workspace()
        let listed = try CLI.run(["contacts", "query", "--db", workspace.db, "--limit", "1", "--format", "ndjson"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any])
        let id = try #require(object["id"] as? String)
        let shown = try CLI.run(["contacts", "get", id, "--offline", "--db", workspace.db])
        #expect(shown.status == 0)
        #expect(shown.stdout.contains(id) && shown.stdout.contains("synced"))
        let json = try CLI.run(["contacts", "get", id, "--offline", "--json", "--db", workspace.db])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect((document["contact"] as? [String: Any])?["id"] as? String == id)
        #expect((document["mirror"] as? [String: Any])?["state"] as? String == "synced")
        let missing = try CLI.run(["contacts", "get", "nope", "--offline", "--db", workspace.db])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("no contact with id nope"))
    }

    @Test func statusReportsCounts() throws {
        let workspace = try Workspace()
        let result = try CLI.run(["status", "--json", "--db", workspace.db])
        #expect(result.status == 0)
        let status = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect((status["contacts"] as? [String: Int])?["synced"] == 300)
        #expect((status["outbox"] as? [String: Int])?["pending"] == 0)
        #expect(status["path"] as? String == workspace.db)
        let text = try CLI.run(["status", "--db", workspace.db])
        #expect(text.stdout.contains("synced 300"))
    }

    @Test func dbFromEnvironment() throws {
        let workspace = try Workspace(contacts: 5)
        let result = try CLI.run(["status", "--json"], environment: ["INTERCOM_SYNC_DB": workspace.db])
        #expect(result.status == 0)
        #expect(result.stdout.contains("\"synced\":5"))
    }

    @Test(arguments: [
        (["contacts", "query", "--format", "xml"], "xml"),
        (["contacts", "query", "--updated-since", "last tuesday"], "last tuesday"),
        (["contacts", "query", "--limit", "0"], "--limit"),
        (["contacts", "query", "--attribute", "plan"], "name=value"),
        (["contacts", "query", "--after", "garbage"], "cursor"),
    ])
    func usageErrorsExitTwoWithOneLine(arguments: [String], mention: String) throws {
        let workspace = try Workspace(contacts: 3)
        let before = try Data(contentsOf: URL(fileURLWithPath: workspace.db))
        let result = try CLI.run(arguments + ["--db", workspace.db])
        #expect(result.status == 2)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(result.stderr.contains(mention))
        #expect(try Data(contentsOf: URL(fileURLWithPath: workspace.db)) == before)
    }

    @Test func missingMirrorOrFolderFailsWithoutCreatingAnything() throws {
        let workspace = try Workspace(contacts: 0)
        let absent = workspace.folder.appendingPathComponent("absent.sqlite").path
        let noMirror = try CLI.run(["contacts", "query", "--db", absent])
        #expect(noMirror.status == 1)
        #expect(noMirror.stderr.contains("no mirror"))
        #expect(!FileManager.default.fileExists(atPath: absent))
        let noFolder = try CLI.run(["status", "--db", workspace.folder.appendingPathComponent("missing/m.sqlite").path])
        #expect(noFolder.status == 1)
        #expect(noFolder.stderr.contains("does not exist"))
        let notes = workspace.folder.appendingPathComponent("notes.txt")
        try Data("hello".utf8).write(to: notes)
        let notMirror = try CLI.run(["contacts", "query", "--db", notes.path])
        #expect(notMirror.status == 1)
        #expect(notMirror.stderr.contains("not an intercom-sync mirror"))
        #expect(try String(contentsOf: notes, encoding: .utf8) == "hello")
    }

    /// Every example in every command's help fits 80 columns as the help prints it, so that a
    /// pasted example runs as written: a long one is split with `\` and an indented rest, and
    /// no line of the examples starts at the margin (a wrapped piece that would run alone).
    @Test func everyExampleFitsEightyColumns() throws {
        let commands = [
            [], ["auth", "login"], ["auth", "token"], ["auth", "logout"], ["auth", "status"], ["sync"],
            ["contacts", "query"], ["contacts", "get"], ["contacts", "create"], ["contacts", "import"],
            ["contacts", "tag"], ["contacts", "untag"], ["contacts", "update"], ["contacts", "note"],
            ["contacts", "archive"], ["contacts", "unarchive"], ["contacts", "delete"], ["messages", "send"],
            ["outbox", "flush"], ["outbox", "list"], ["outbox", "retry"], ["outbox", "drop"], ["outbox", "resolve"],
            ["tags", "list"], ["companies", "list"], ["segments", "list"],
            ["status"], ["doctor"], ["sim"], ["demo"], ["generate"],
        ]
        for command in commands {
            let help = try CLI.run(command + ["--help"], environment: ["COLUMNS": "80"])
            #expect(help.status == 0, "\(command)")
            var inExamples = false
            var continued = false
            for line in help.stdout.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix("Examples:") {
                    inExamples = true
                    continue
                }
                guard inExamples else { continue }
                if line.isEmpty { break }
                #expect(line.count <= 78, "\(command): \(line)")
                #expect(line.hasPrefix("  "), "\(command): a wrapped example: \(line)")
                if line.hasPrefix("    ") { #expect(continued, "\(command): \(line) continues nothing") }
                continued = line.hasSuffix("\\")
            }
        }
    }

    @Test func everyCommandHasHelpWithAnExample() throws {
        for command in [["contacts", "query"], ["contacts", "get"], ["status"], ["generate"], []] {
            let result = try CLI.run(command + ["--help"])
            #expect(result.status == 0)
            #expect(result.stdout.contains("intercom-sync \(command.joined(separator: " "))"))
            #expect(result.stdout.contains("Example"))
        }
    }

    /// One process writes the mirror while another queries it: WAL lets the reader go on.
    @Test func queriesWorkWhileAnotherProcessWrites() async throws {
        let workspace = try Workspace(contacts: 10)
        let writer = Process()
        writer.executableURL = CLI.binary
        writer.arguments = ["generate", "--count", "60000", "--seed", "9", "--into-mirror", "--db", workspace.db]
        writer.standardError = FileHandle.nullDevice
        try writer.run()
        // Polled off the cooperative pool: blocking a pool thread for the seconds the writer runs
        // would stall the simulators other suites run in this process.
        let db = workspace.db
        let (counts, failures) = try await CLI.offPool { () -> ([Int], [String]) in
            var counts: [Int] = []
            var failures: [String] = []
            while writer.isRunning {
                let result = try CLI.run(["status", "--json", "--db", db])
                if result.status != 0 { failures.append(result.stderr) }
                if let status = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
                    let synced = (status["contacts"] as? [String: Int])?["synced"]
                {
                    counts.append(synced)
                }
            }
            writer.waitUntilExit()
            return (counts, failures)
        }
        #expect(failures.isEmpty, "queries failed while writing: \(failures)")
        #expect(writer.terminationStatus == 0)
        #expect(counts.count >= 2, "the writer finished before the reader could overlap it")
        #expect(counts == counts.sorted(), "a reader saw the count go backwards")
        let final = try CLI.run(["contacts", "query", "--db", workspace.db, "--search", "jose", "--limit", "1"])
        #expect(final.status == 0)
    }
}
