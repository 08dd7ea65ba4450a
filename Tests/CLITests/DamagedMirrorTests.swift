import Foundation
import GRDB
import Testing

/// A mirror file that is empty or whose rows were damaged (a flipped byte, another tool's
/// write) says what is wrong and what to do, and `doctor --repair` makes it readable again
/// without losing what Intercom can give back.
@Suite struct DamagedMirrorTests {
    @Test func anEmptyFileIsNoMirrorYetEverywhere() throws {
        let workspace = try Workspace(contacts: 0)
        #expect(FileManager.default.createFile(atPath: workspace.db, contents: Data()))
        let status = try CLI.run(["status", "--db", workspace.db])
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("none yet"), "\(status.stdout)")
        let query = try CLI.run(["contacts", "query", "--db", workspace.db])
        #expect(query.status == 1)
        #expect(query.stderr.contains("no mirror here yet"), "\(query.stderr)")
        #expect(!query.stderr.contains("no such table"), "\(query.stderr)")
        let created = try CLI.run(["contacts", "create", "--email", "first@example.com", "--db", workspace.db])
        #expect(created.status == 0, "\(created.stderr)")
        #expect(try CLI.run(["status", "--json", "--db", workspace.db]).stdout.contains(#""pending":1"#))
    }

    @Test func aDamagedContactIsNamedAndRepairMarksItForTheNextFullPull() throws {
        let workspace = try Workspace(contacts: 5)
        let queue = try DatabaseQueue(path: workspace.db)
        let (attributesID, bodyID) = try queue.write { db in
            let ids = try String.fetchAll(db, sql: "SELECT id FROM contacts WHERE body != '' ORDER BY row_id LIMIT 2")
            try db.execute(sql: #"UPDATE contacts SET custom_attributes = '{"plan":' WHERE id = ?"#, arguments: [ids[0]])
            try db.execute(sql: "UPDATE contacts SET body = x'28b52ffd0000ffffffff' WHERE id = ?", arguments: [ids[1]])
            return (ids[0], ids[1])
        }
        try queue.close()

        let query = try CLI.run(["contacts", "query", "--format", "json", "--db", workspace.db])
        #expect(query.status == 1)
        #expect(query.stderr.contains("contact \(attributesID) is damaged in the mirror"), "\(query.stderr)")
        #expect(query.stderr.contains("intercom-sync doctor"), "\(query.stderr)")

        let check = try CLI.run(["doctor", "--db", workspace.db])
        #expect(check.status == 1)
        #expect(check.stdout.contains("contact \(attributesID) (synced) is damaged"), "\(check.stdout)")
        #expect(check.stdout.contains("contact \(bodyID) (synced) is damaged: its stored body"), "\(check.stdout)")
        #expect(check.stdout.contains("doctor --repair"), "\(check.stdout)")

        let repaired = try CLI.run(["doctor", "--repair", "--json", "--db", workspace.db])
        #expect(repaired.status == 0, "\(repaired.stdout) \(repaired.stderr)")
        #expect(repaired.stdout.contains(#""marked_for_refetch":["\#(attributesID)","\#(bodyID)"]"#), "\(repaired.stdout)")
        let again = try CLI.run(["contacts", "query", "--format", "json", "--db", workspace.db])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains(attributesID) && again.stdout.contains(bodyID))
        #expect(try CLI.run(["doctor", "--db", workspace.db]).status == 0)
    }

    /// Bytes flipped inside a page of the file: SQLite's own reads fail, and `doctor` says so
    /// with what to do, in text and in JSON, instead of failing as its first read does.
    @Test func doctorExplainsAPageSQLiteCannotRead() throws {
        let workspace = try Workspace(contacts: 2_000)
        // The header of every eighth page of the file's middle half, so that the contacts' pages and the
        // full-text index's are hit however the schema lays them out.
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: workspace.db))
        let pages = try handle.seekToEnd() / 4096
        for page in stride(from: pages / 4, to: pages * 3 / 4, by: 8) {
            try handle.seek(toOffset: page * 4096)
            try handle.write(contentsOf: Data(repeating: 0xFF, count: 64))
        }
        try handle.close()
        let text = try CLI.run(["doctor", "--db", workspace.db])
        #expect(text.status == 1, "\(text.stderr)")
        #expect(text.stdout.contains("move the file aside"), "\(text.stdout) \(text.stderr)")
        let json = try CLI.run(["doctor", "--json", "--db", workspace.db])
        #expect(json.status == 1)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect((document["integrity_problems"] as? [Any])?.isEmpty == false, "\(json.stdout)")
        // Every command that meets the damaged page says what failed, never the SQL that did.
        for command in [["contacts", "query", "--all"], ["contacts", "query", "--search", "a", "--all"]] {
            let read = try CLI.run(command + ["--db", workspace.db])
            #expect(read.status == 1, "\(command): every contact is read, the damaged page's among them")
            #expect(read.stderr.contains("damaged") && read.stderr.contains("doctor"), "\(command): \(read.stderr)")
            #expect(!read.stderr.contains("SELECT") && !read.stderr.contains("executing"), "no SQL: \(read.stderr)")
        }
    }

    @Test func contactsGetTakesAnEmail() throws {
        let workspace = try Workspace(contacts: 5)
        let page = try CLI.run(["contacts", "query", "--limit", "1", "--format", "json", "--db", workspace.db])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(page.stdout.utf8)) as? [String: Any])
        let first = try #require((document["contacts"] as? [[String: Any]])?.first)
        let id = try #require(first["id"] as? String)
        let email = try #require(first["email"] as? String)
        let got = try CLI.run(["contacts", "get", email.uppercased(), "--offline", "--json", "--db", workspace.db])
        #expect(got.status == 0, "\(got.stderr)")
        #expect(got.stdout.contains(id))
        let unknown = try CLI.run(["contacts", "get", "nobody@example.com", "--offline", "--db", workspace.db])
        #expect(unknown.status == 1 && unknown.stderr.contains("no contact with email nobody@example.com"))
    }

    @Test func theTokenCanComeFromAFileOrStandardInput() async throws {
        let simulator = try await SyncCommandTests.simulator(contacts: 5)
        defer { Task { await simulator.stop() } }
        let workspace = try Workspace(contacts: 0)
        let fromInput = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync", "--token-file", "-"], db: workspace.db, simulator: simulator),
            input: Data((simulator.accessToken + "\n").utf8))
        #expect(fromInput.status == 0, "\(fromInput.stderr)")
        let file = workspace.folder.appendingPathComponent("token").path
        try Data(simulator.accessToken.utf8).write(to: URL(fileURLWithPath: file))
        let fromFile = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync", "--token-file", file], db: workspace.db, simulator: simulator))
        #expect(fromFile.status == 0, "\(fromFile.stderr)")
        let before = await simulator.workspace.requestLog().count
        let missing = try CLI.run(["sync", "--token-file", file + ".missing", "--db", workspace.db])
        #expect(missing.status == 1 && missing.stderr.contains("--token-file"), "\(missing.stderr)")
        let both = try CLI.run(["sync", "--token", "t", "--token-file", file, "--db", workspace.db])
        #expect(both.status == 2, "\(both.stderr)")
        // A line break in a token would add a header of its own to every request.
        for (flags, environment) in [
            (["--token", "tok\r\nX-Evil: 1"], [:]), ([], ["INTERCOM_ACCESS_TOKEN": "tok\nX-Evil: 2"]),
        ] {
            let injected = try await CLI.runOffPool(
                SyncCommandTests.arguments(["sync"] + flags, db: workspace.db, simulator: simulator),
                environment: environment)
            #expect(injected.status == 1 && injected.stderr.contains("control characters"), "\(injected.stderr)")
        }
        #expect(await simulator.workspace.requestLog().count == before, "nothing was sent")
    }

    @Test func aDamagedSchemaIsCaughtOnOpenAndRepairedWithoutLosingAContact() throws {
        let workspace = try Workspace(contacts: 300)
        let db = ["--db", workspace.db]
        #expect(try CLI.run(["contacts", "create", "--email", "kept@example.com"] + db).status == 0)
        let queue = try DatabaseQueue(path: workspace.db)
        try queue.write { db in try db.execute(sql: "DROP TABLE contacts_fts; DROP INDEX contacts_by_email") }
        try queue.close()
        for command in [["status"], ["contacts", "query", "--search", "ana"], ["contacts", "create", "--email", "x@y.io"]] {
            let refused = try CLI.run(command + db)
            #expect(refused.status == 1, "\(command)")
            #expect(refused.stderr.contains("missing index contacts_by_email, table contacts_fts"), "\(refused.stderr)")
            #expect(refused.stderr.contains("doctor --repair"))
            #expect(!refused.stderr.contains("SELECT") && !refused.stderr.contains("INSERT"), "no SQL: \(refused.stderr)")
        }
        let check = try CLI.run(["doctor"] + db)
        #expect(check.status == 1 && check.stdout.contains("--repair"))
        let repaired = try CLI.run(["doctor", "--repair", "--json"] + db)
        #expect(repaired.status == 0, "\(repaired.stdout) \(repaired.stderr)")
        #expect(repaired.stdout.contains("\"sound\":true"))
        #expect(try CLI.contactCounts(workspace.db) == ["synced": 300, "pending": 1, "tombstoned": 0])
        let search = try CLI.run(["contacts", "query", "--search", "kept", "--format", "ndjson"] + db)
        #expect(search.stdout.contains("kept@example.com"), "the full-text index was rebuilt from the contacts")
        #expect(try CLI.run(["outbox", "list", "--json"] + db).stdout.contains("kept@example.com"))

        let lost = try DatabaseQueue(path: workspace.db)
        try lost.write { db in try db.execute(sql: "DROP TABLE outbox") }
        try lost.close()
        let beyond = try CLI.run(["doctor", "--repair"] + db)
        #expect(beyond.status == 1)
        #expect(beyond.stderr.contains("lost table outbox, which cannot be rebuilt"), "\(beyond.stderr)")
    }
}
