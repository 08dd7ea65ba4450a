import Foundation
import GRDB
import IntercomSimulator
import Testing

@testable import IntercomSync

/// `contacts import` as a user runs it: exit codes, the errors file, standard input, dry runs,
/// and --push against a simulator over loopback.
@Suite(.serialized) struct ImportCommandTests {
    static func fixture(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/csv/\(name)").path
    }

    @Test func rejectedRowsExitThreeAndLandInTheErrorsFile() throws {
        let workspace = try Workspace(contacts: 0)
        let errors = workspace.folder.appendingPathComponent("rejected.csv").path
        let result = try CLI.run([
            "contacts", "import", Self.fixture("odd-header.csv"), "--db", workspace.db, "--errors", errors,
        ])
        #expect(result.status == 3, "\(result.stderr)")
        #expect(result.stdout.contains("3 rows read: 2 imported, 0 skipped as duplicates, 1 rejected"))
        #expect(result.stdout.contains("rejected, invalid phone: 1"))
        #expect(result.stdout.contains("ignored columns: \"Company\""))
        let text = try String(contentsOfFile: errors, encoding: .utf8)
        let lines = text.split(separator: "\r\n").map(String.init)
        #expect(
            lines.first
                == "line,reason, E-Mail Address ,FIRST_NAME,Last-Name,Contact Type,User ID,Avatar URL,Company,phone number,raw")
        #expect(lines.count == 2)
        #expect(lines[1].hasPrefix("4,\"phone: ") && lines[1].contains("jo@example.com"))

        let query = try CLI.run(["contacts", "query", "--email", "hana@example.jp", "--format", "json", "--db", workspace.db])
        #expect(query.stdout.contains("\"state\":\"pending\"") && query.stdout.contains("Hana Sato"))
        let again = try CLI.run(["contacts", "import", Self.fixture("odd-header.csv"), "--db", workspace.db, "--json"])
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [String: Any])
        #expect(summary["imported"] as? Int == 0 && summary["duplicates"] as? Int == 2 && summary["rejected"] as? Int == 1)
    }

    /// The tool's own CSV export imports back as it was: its defused cells (`'+1 555…`) are
    /// read as the values they stand for, and a second export matches the first.
    @Test func anExportImportsBackAndExportsTheSame() throws {
        let source = try Workspace(contacts: 200)
        let export = try CLI.run(["contacts", "query", "--all", "--format", "csv", "--db", source.db])
        #expect(export.status == 0)
        #expect(export.stdout.contains(",'+"), "phones are defused")
        let csv = source.folder.appendingPathComponent("export.csv")
        try Data(export.stdout.utf8).write(to: csv)
        let copy = try Workspace(contacts: 0)
        let imported = try CLI.run(["contacts", "import", csv.path, "--json", "--db", copy.db])
        #expect(imported.status == 0, "\(imported.stdout) \(imported.stderr)")
        #expect(imported.stdout.contains("\"imported\":200"), "\(imported.stdout)")
        let again = try CLI.run(["contacts", "query", "--all", "--format", "csv", "--db", copy.db])
        /// Every column an import carries over: external_id, role, email, phone, name, avatar and
        /// custom_attributes (ids, owners, times and state are the new mirror's own).
        func fields(_ text: String) throws -> Set<[String]> {
            var reader = CSVReader(bytes: Array(text.utf8))
            var rows = Set<[String]>()
            while let row = try reader.next() {
                guard case .record(let line, let cells) = row, line > 1 else { continue }
                rows.insert([1, 2, 3, 4, 5, 6, 8].map { cells[$0] })
            }
            return rows
        }
        let exported = try fields(export.stdout)
        #expect(exported.count == 200 && exported.contains { $0[6] != "{}" }, "the export carries attributes")
        #expect(try fields(again.stdout) == exported)
        // With --custom-attributes too: no bookkeeping column becomes an attribute.
        let other = try Workspace(contacts: 0)
        let flagged = try CLI.run(["contacts", "import", csv.path, "--custom-attributes", "--db", other.db])
        #expect(flagged.status == 0, "\(flagged.stderr)")
        #expect(!flagged.stdout.contains("ignored columns"), "\(flagged.stdout)")
        let third = try CLI.run(["contacts", "query", "--all", "--format", "csv", "--db", other.db])
        #expect(try fields(third.stdout) == exported)
    }

    @Test func cleanFilesExitZeroAndStandardInputWorks() throws {
        let workspace = try Workspace(contacts: 0)
        let clean = try CLI.run(["contacts", "import", Self.fixture("export-bom-crlf.csv"), "--db", workspace.db])
        #expect(clean.status == 0, "\(clean.stderr)")
        let input = Data("email,name\nzed@example.com,Zed\nbjorn@example.se,Dup\n".utf8)
        let piped = try CLI.run(["contacts", "import", "-", "--db", workspace.db, "--role", "lead", "--json"], input: input)
        #expect(piped.status == 0, "\(piped.stderr)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(piped.stdout.utf8)) as? [String: Any])
        #expect(summary["imported"] as? Int == 1 && summary["duplicates"] as? Int == 1)
        let zed = try CLI.run(["contacts", "query", "--email", "zed@example.com", "--format", "csv", "--db", workspace.db])
        #expect(zed.stdout.contains(",lead,zed@example.com,"))
    }

    @Test func unreadableFilesAndBadOptionsWriteNothing() throws {
        let workspace = try Workspace(contacts: 0)
        for (arguments, status, message) in [
            (["missing.csv"], Int32(1), "cannot read missing.csv"),
            ([Self.fixture("empty.csv")], 1, "the file is empty"),
            ([Self.fixture("no-email-column.csv")], 1, "no column holds the email"),
            ([Self.fixture("quoted-commas.csv"), "--map", "Nope=email"], 2, "the file has no column \"Nope\""),
            ([Self.fixture("quoted-commas.csv"), "--map", "Full Name"], 2, "write it as column=field"),
            ([Self.fixture("quoted-commas.csv"), "--dry-run", "--push"], 2, "nothing to --push"),
        ] {
            let result = try CLI.run(["contacts", "import"] + arguments + ["--db", workspace.db])
            #expect(result.status == status, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
        let dry = try CLI.run(["contacts", "import", Self.fixture("quoted-commas.csv"), "--dry-run", "--db", workspace.db])
        #expect(dry.status == 0)
        #expect(dry.stdout.contains("3 would import, 1 skipped as duplicates"))
        #expect(!FileManager.default.fileExists(atPath: workspace.db), "a dry run writes nothing")
        let help = try CLI.run(["contacts", "import", "--help"])
        #expect(help.stdout.contains("Examples:") && help.stdout.contains("--custom-attributes"))
    }

    /// Kill -9 of an import at random moments, on both paths (a file of 100,000 rows loads in
    /// bulk, its indexes deferred; one of 20,000 rows does not): running it again gives the
    /// mirror one uninterrupted run gives (an import can be run again), indexes exact.
    @Test func killedImportsFinishWhenRunAgain() async throws {
        let files = try Workspace(contacts: 0)
        for rows in [100_000, 20_000] {
            let csv = files.folder.appendingPathComponent("contacts-\(rows).csv").path
            let generated = try CLI.run(["generate", "--count", "\(rows)", "--format", "csv", "--out", csv])
            #expect(generated.status == 0, "\(generated.stderr)")
            let reference = try Workspace(contacts: 0)
            let began = ContinuousClock.now
            let clean = try await CLI.runOffPool(["contacts", "import", csv, "--json", "--db", reference.db])
            // Kills land between a tenth and three quarters of a clean run's time, whatever the
            // machine's load.
            let cleanMilliseconds = Int((ContinuousClock.now - began) / .milliseconds(1))
            #expect(clean.status == 0, "\(clean.stderr)")
            let expected = try Self.contents(of: reference.db)
            #expect(expected.count > rows / 2)
            var generator = SystemRandomNumberGenerator()
            var schedule = CLI.KillSchedule(cleanRun: .milliseconds(cleanMilliseconds), from: 0.1, to: 0.75)
            var killedMidway = 0
            for trial in 0..<3 {
                let workspace = try Workspace(contacts: 0)
                let arguments = ["contacts", "import", csv, "--batch-size", "5000", "--db", workspace.db]
                let delay = schedule.delay(using: &generator)
                let began = ContinuousClock.now
                if try await CLI.offPool({ try CLI.runKilled(arguments, environment: [:], after: delay) }) == nil {
                    killedMidway += 1
                } else {
                    schedule.finished(in: ContinuousClock.now - began)
                }
                let finish = try await CLI.runOffPool(arguments)
                #expect(finish.status == 0, "\(rows) rows, trial \(trial): \(finish.stderr)")
                #expect(try Self.contents(of: workspace.db) == expected, "\(rows) rows, trial \(trial)")
            }
            #expect(killedMidway >= 1, "kills should land during the import")
        }
    }

    /// Every contact's email, name and phone, with checks that the mirror is whole: SQLite's
    /// integrity check (indexes, CHECKs), the FTS index against the table, no deferred indexing
    /// left (the FTS insert trigger a bulk load drops is back), and every imported contact
    /// waiting for its create.
    static func contents(of path: String) throws -> [String: String] {
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        return try queue.write { db in
            #expect(try String.fetchAll(db, sql: "PRAGMA integrity_check") == ["ok"])
            try db.execute(sql: "INSERT INTO contacts_fts(contacts_fts, rank) VALUES ('integrity-check', 1)")
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM sync_state WHERE key LIKE '%deferred'") == 0)
            #expect(
                try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
                    == [
                        "contact_links_delete", "contact_links_follow_updated_at", "contact_links_tombstone",
                        "contacts_fts_deferred_delete", "contacts_fts_deferred_update", "contacts_fts_delete",
                        "contacts_fts_insert", "contacts_fts_update",
                    ])
            let contacts = try Int.fetchOne(db, sql: "SELECT count(*) FROM contacts")!
            #expect(try Int.fetchOne(db, sql: "SELECT sum(waiting) FROM imported_creates") == contacts)
            var rows: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT email, name, phone FROM contacts") {
                let email: String = row[0]
                #expect(rows[email.lowercased()] == nil, "\(email) twice")
                let name: String? = row[1]
                let phone: String? = row[2]
                rows[email.lowercased()] = "\(name ?? "") \(phone ?? "")"
            }
            return rows
        }
    }

    /// Imported contacts wait for a flush to write their entries: `status` counts them as
    /// pending creates, and `outbox list` says they wait.
    @Test func importedCreatesShowAsPendingBeforeAFlush() throws {
        let workspace = try Workspace(contacts: 0)
        let imported = try CLI.run(["contacts", "import", Self.fixture("quoted-commas.csv"), "--db", workspace.db])
        #expect(imported.status == 0, "\(imported.stderr)")
        let status = try CLI.run(["status", "--json", "--db", workspace.db])
        let outbox = try JSONValue(jsonText: status.stdout)["outbox"]
        #expect(outbox?["pending"] == 3)
        let list = try CLI.run(["outbox", "list", "--db", workspace.db])
        #expect(list.status == 0)
        #expect(list.stderr.contains("3 imported contacts wait to be pushed too"), "\(list.stderr)")
        #expect(!list.stdout.contains("the outbox is empty"))
        let sent = try CLI.run(["outbox", "list", "--state", "sent", "--db", workspace.db])
        #expect(!sent.stderr.contains("imported contacts wait"), "only a list of pending entries mentions them")
    }

    @Test func pushFlushesTheImportedCreates() async throws {
        let simulator = try await SyncCommandTests.simulator(contacts: 0)
        defer { Task { await simulator.stop() } }
        let workspace = try Workspace(contacts: 0)
        let result = try await CLI.runOffPool(
            SyncCommandTests.arguments(
                ["contacts", "import", Self.fixture("quoted-commas.csv"), "--push"], db: workspace.db, simulator: simulator),
            environment: ["INTERCOM_ACCESS_TOKEN": simulator.accessToken])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("flush: 3 contacts created"))
        let emails = try await simulator.workspace.exportContacts().compactMap { try JSONValue(jsonText: $0)["email"]?.string }
        #expect(emails.sorted() == ["ana@example.com", "john@example.com", "jose@example.com"])
        let list = try CLI.run(["outbox", "list", "--state", "sent", "--json", "--db", workspace.db])
        #expect(list.stdout.components(separatedBy: "\"create_contact\"").count == 4)
        #expect(!result.stdout.contains(simulator.accessToken) && !result.stderr.contains(simulator.accessToken))
    }
}
