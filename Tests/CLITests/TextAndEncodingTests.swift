import Foundation
import Testing

@testable import IntercomSync

/// Text beyond ASCII, as people type and files carry it: letters of any case in filters,
/// internationalised emails, CSV saved as Windows-1252, and the tool's own version.
@Suite struct TextAndEncodingTests {
    @Test func filtersFoldTheCaseOfEveryLetter() throws {
        let workspace = try Workspace(contacts: 20)
        let db = ["--db", workspace.db]
        let created = try CLI.run(["contacts", "create", "--email", "üñí@exämple.com", "--name", "Zoë Ünal"] + db)
        #expect(created.status == 0, "an internationalised email is accepted: \(created.stderr)")
        for filter in [
            ["--name", "ZOË"], ["--name", "zoë"], ["--name", "ünal"], ["--email", "ÜÑÍ@EXÄMPLE.COM"],
            ["--email", "üñí@exämple.com"],
        ] {
            let found = try CLI.run(["contacts", "query", "--format", "json"] + filter + db)
            #expect(found.status == 0, "\(filter): \(found.stderr)")
            #expect(found.stdout.contains("Zoë Ünal"), "\(filter): \(found.stdout)")
        }
        // Every way to name a contact by email folds the case the same way.
        let tagged = try CLI.run(["contacts", "tag", "ÜÑÍ@EXÄMPLE.COM", "VIP"] + db)
        #expect(tagged.status == 0, "\(tagged.stderr)")
        let again = try CLI.run(["contacts", "create", "--email", "ÜÑÍ@EXÄMPLE.COM"] + db)
        #expect(again.status != 0 && again.stderr.contains("already"), "a duplicate: \(again.stderr)")
        let other = try CLI.run(["contacts", "query", "--name", "ZOÉ", "--format", "json"] + db)
        #expect(!other.stdout.contains("Zoë Ünal"), "another letter is another letter")
    }

    @Test func aWindows1252FileIsExplainedAndReadWithItsEncoding() throws {
        let workspace = try Workspace(contacts: 0)
        let csv = workspace.folder.appendingPathComponent("excel.csv")
        // "Zoë Müller" and "François – Price" as Excel on Windows saves them.
        var bytes = Array("email,name\r\nzoe@example.com,Zo".utf8) + [0xEB] + Array(" M".utf8) + [0xFC] + Array("ller\r\n".utf8)
        bytes += Array("fran@example.com,Fran".utf8) + [0xE7] + Array("ois ".utf8) + [0x96] + Array(" Price\r\n".utf8)
        try Data(bytes).write(to: csv)

        let plain = try CLI.run(["contacts", "import", csv.path, "--db", workspace.db])
        #expect(plain.status == 3, "\(plain.stderr)")
        #expect(plain.stdout.contains("rejected, not UTF-8: 2"), "\(plain.stdout)")
        #expect(plain.stdout.contains("--encoding windows-1252"), "\(plain.stdout)")
        #expect(plain.stdout.contains("iconv -f WINDOWS-1252 -t UTF-8"), "\(plain.stdout)")

        let read = try CLI.run(["contacts", "import", csv.path, "--encoding", "latin1", "--db", workspace.db])
        #expect(read.status == 0, "\(read.stdout) \(read.stderr)")
        let query = try CLI.run(["contacts", "query", "--format", "json", "--db", workspace.db])
        #expect(query.stdout.contains("Zoë Müller") && query.stdout.contains("François – Price"), "\(query.stdout)")

        let wrong = try CLI.run(["contacts", "import", csv.path, "--encoding", "ebcdic", "--db", workspace.db])
        #expect(wrong.status == 2 && wrong.stderr.contains("--encoding"), "\(wrong.stderr)")
    }

    @Test func versionNamesTheToolAndTheSchema() throws {
        let version = try CLI.run(["--version"])
        #expect(version.status == 0, "\(version.stderr)")
        #expect(
            version.stdout.contains("intercom-sync \(IntercomSyncVersion.library)")
                && version.stdout.contains("mirror schema \(IntercomSyncVersion.schema)"), "\(version.stdout)")
    }

    @Test func controlCharactersInContactsNeverReachTheTerminal() async throws {
        let simulator = try await SyncCommandTests.simulator(contacts: 3)
        defer { Task { await simulator.stop() } }
        let evil = "Evil \u{1b}[2J\u{1b}]0;pwned\u{07}\rfake\u{202e}gnp.exe"
        let id = await simulator.workspace.contactIDs()[0]
        let fields = JSONValue.object(["name": .string(evil)]).jsonText
        try await simulator.workspace.edit(id: id, fieldsJSON: fields)
        let workspace = try Workspace(contacts: 0)
        let token = ["INTERCOM_ACCESS_TOKEN": simulator.accessToken]
        let sync = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync"], db: workspace.db, simulator: simulator), environment: token)
        #expect(sync.status == 0, "\(sync.stderr)")
        let db = ["--db", workspace.db]
        let shown = [
            try CLI.run(["contacts", "query", "--search", "evil"] + db),
            try CLI.run(["contacts", "get", id, "--offline"] + db),
        ]
        for result in shown {
            #expect(result.status == 0, "\(result.stderr)")
            let raw = Set(result.stdout.unicodeScalars.map(\.value))
            #expect(raw.isDisjoint(with: [0x1b, 0x07, 0x0d, 0x202e]), "\(result.stdout.debugDescription)")
            #expect(result.stdout.contains(#"Evil \u001b[2J\u001b]0;pwned\u0007\r"#), "\(result.stdout)")
        }
        // Machine-readable output stays exact.
        let json = try CLI.run(["contacts", "get", id, "--offline", "--json"] + db)
        let document = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect((document?["contact"] as? [String: Any])?["name"] as? String == evil)
        let csv = try CLI.run(["contacts", "query", "--search", "evil", "--format", "csv"] + db)
        #expect(csv.stdout.contains(evil))
    }

    /// An id is one component of a request's path, encoded once: a slash or a percent sign in it
    /// can neither reach another path nor name another contact.
    @Test func anIdIsEncodedOnceAsOnePathComponent() async throws {
        let server = try await StubServer.start { _, path in
            if path == "/me" {
                return StubServer.Answer(status: 200, body: #"{"type":"admin","id":"1","app":{"id_code":"w1"}}"#)
            }
            return StubServer.Answer(status: 404, body: #"{"type":"error.list","errors":[{"code":"not_found"}]}"#)
        }
        defer { Task { await server.stop() } }
        let workspace = try Workspace(contacts: 0)
        let result = try await CLI.runOffPool(
            ["contacts", "get", "../a/b%2F c", "--refresh", "--db", workspace.db, "--base-url", server.baseURL],
            environment: ["INTERCOM_ACCESS_TOKEN": "tok_paths"])
        #expect(result.status != 0)
        // An id of dots alone would be a step up the path, which clients resolve before sending.
        let dots = try await CLI.runOffPool(
            ["contacts", "get", "..", "--refresh", "--db", workspace.db, "--base-url", server.baseURL],
            environment: ["INTERCOM_ACCESS_TOKEN": "tok_paths"])
        #expect(dots.status != 0)
        let paths = server.requests.map(\.path).filter { $0 != "/me" }
        #expect(paths == ["/contacts/..%2Fa%2Fb%252F%20c", "/contacts/%2E%2E"], "\(paths)")
    }
}
