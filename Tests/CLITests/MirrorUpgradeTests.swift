import Foundation
import GRDB
import SyntheticData
import Testing

@testable import IntercomSync

/// A mirror written before bodies were compressed upgrades in place on its first open: the same
/// answers after as before, and a killed upgrade resumes.
@Suite(.serialized) struct MirrorUpgradeTests {
    /// A mirror of `contacts` generated contacts, two contacts created here and three staged
    /// messages, written by this version.
    static func makeMirror(at path: String, contacts: Int) throws {
        let mirror = try ContactMirror.open(at: path, mode: .createIfMissing)
        let generator = ContactGenerator(seed: 21)
        var pages: [String] = []
        for start in stride(from: 0, to: contacts, by: 150) {
            let page = generator.contacts(start..<min(start + 150, contacts))
            pages.append(IntercomPage.list(page, page: 1, perPage: 150, totalCount: contacts, nextCursor: nil))
            if pages.count == 20 {
                _ = try mirror.upsertPages(pages, fetchedAt: 1_767_225_600)
                pages.removeAll()
            }
        }
        if !pages.isEmpty { _ = try mirror.upsertPages(pages, fetchedAt: 1_767_225_600) }
        let ada = try mirror.stageContact(ContactDraft(email: "ada@example.com", name: "Ada Lovelace"), now: 1_767_230_000)
        _ = try mirror.stageContact(ContactDraft(role: .lead, email: "grace@example.com", name: "Grace"), now: 1_767_230_001)
        for text in ["Welcome", "Your invoice", "See you soon"] {
            _ = try mirror.stageMessage(MessageDraft(kind: .inApp, body: text, to: ada.localID), now: 1_767_230_002)
        }
        try mirror.close()
    }

    /// Turns a mirror of this version into one of the version before compressed bodies: text
    /// bodies, no dictionaries, migrations up to v9 (v10 added the dictionaries' table alone).
    static func writeAsBeforeCompression(_ path: String) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            ContactMirror.registerFunctions(db)
            try db.execute(
                sql: """
                    UPDATE contacts SET body = contact_body(body) WHERE typeof(body) = 'blob';
                    DROP TABLE body_dictionaries;
                    DELETE FROM sync_state WHERE key LIKE 'bodies.%';
                    DELETE FROM grdb_migrations WHERE identifier = 'v10: compressed bodies';
                    """)
        }
        try queue.writeWithoutTransaction { db in try db.execute(sql: "VACUUM") }
        try queue.close()
    }

    static func column(_ sql: String, in path: String) throws -> [String] {
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        return try queue.read { db in try String.fetchAll(db, sql: sql) }
    }

    /// What a user can ask of a mirror: queries of each kind, every contact with its body, the
    /// outbox, and full-text matches straight from the index.
    static func answers(_ mirror: ContactMirror) throws -> [String] {
        var answers: [String] = []
        var queries: [ContactQuery] = []
        var search = ContactQuery()
        search.search = "ana"
        search.sort = ContactSort(.relevance)
        queries.append(search)
        var email = ContactQuery()
        email.email = ContactGenerator(seed: 21).contact(at: 77).email.uppercased()
        queries.append(email)
        var pending = ContactQuery()
        pending.states = [.pending]
        queries.append(pending)
        var recent = ContactQuery()
        recent.limit = 30
        queries.append(recent)
        for query in queries {
            answers.append(
                try mirror.contacts(matching: query).contacts.map { "\($0.id) \($0.contact.name ?? "")" }.joined(separator: ","))
        }
        let ids = try mirror.writer.read { db in try String.fetchAll(db, sql: "SELECT id FROM contacts ORDER BY row_id") }
        for id in ids {
            let stored = try #require(try mirror.contact(id: id))
            answers.append("\(id) \(stored.state) \(stored.body ?? "nil")")
        }
        answers += try mirror.outboxEntries().map { "\($0.seq) \($0.kind) \($0.state) \($0.payload)" }
        answers += try mirror.writer.read { db in
            try String.fetchAll(
                db, sql: "SELECT CAST(rowid AS TEXT) FROM contacts_fts WHERE contacts_fts MATCH 'mar*' ORDER BY rowid")
        }
        return answers
    }

    @Test func anUpgradedMirrorAnswersAsBefore() async throws {
        try await CLI.offPool { try Self.upgradeAnswersAsBefore() }
    }

    static func upgradeAnswersAsBefore() throws {
        let workspace = try Workspace(contacts: 0)
        let path = workspace.db
        try Self.makeMirror(at: path, contacts: 1_200)
        let before = try Self.answers(try ContactMirror.open(at: path, mode: .readOnly))
        #expect(before.count > 1_200)
        try Self.writeAsBeforeCompression(path)
        #expect(try Self.column("SELECT DISTINCT typeof(body) FROM contacts", in: path) == ["text"])

        var reported: [(Int, Int)] = []
        let upgraded = try ContactMirror.open(at: path, mode: .existing, onUpgrade: { reported.append(($0, $1)) })
        #expect(reported.last.map { $0 == (1_202, 1_202) } == true, "\(reported)")
        #expect(try Self.answers(upgraded) == before)
        #expect(try upgraded.schemaDamage() == nil)
        #expect(try upgraded.syncState(SyncStateKey.bodiesUpgrade) == nil)
        let kinds = try upgraded.writer.read { db in
            try String.fetchAll(db, sql: "SELECT typeof(body) || ' ' || state FROM contacts GROUP BY 1 ORDER BY 1")
        }
        // Contacts created here have no body from Intercom yet: their empty text stays.
        #expect(kinds == ["blob synced", "text pending"])
        try upgraded.close()

        // A second open has nothing left to do.
        reported.removeAll()
        _ = try ContactMirror.open(at: path, mode: .existing, onUpgrade: { reported.append(($0, $1)) })
        #expect(reported.isEmpty)
    }

    /// `doctor` opens the mirror to write, so it upgrades it: killed once its progress shows a
    /// batch committed, the next run finishes the rest, and every body reads as it did.
    @Test func aKilledUpgradeResumes() async throws {
        let workspace = try Workspace(contacts: 0)
        let path = workspace.db
        // Off the cooperative pool, which the other suites' clients need meanwhile.
        let bodies = try await CLI.offPool {
            try Self.makeMirror(at: path, contacts: 20_000)
            let bodies = try Self.column("SELECT contact_body(body) FROM contacts ORDER BY row_id", in: path, functions: true)
            try Self.writeAsBeforeCompression(path)
            return bodies
        }

        let killed = try await CLI.offPool {
            try CLI.runKilled(["doctor", "--db", path], whenStderrMatches: /compressing bodies: [1-9]/)
        }
        #expect(killed.status == nil, "killed before it finished: \(killed.stderr as String)")
        #expect(killed.stderr.contains("upgrading the mirror: compressing the bodies of 20002 contacts"))
        let kinds = try Self.column("SELECT DISTINCT typeof(body) FROM contacts WHERE body != '' ORDER BY 1", in: path)
        #expect(kinds == ["blob", "text"], "the kill landed part-way")
        let reached = try Self.column("SELECT value FROM sync_state WHERE key = 'bodies.upgrade'", in: path)
        #expect(reached.count == 1 && (Int(reached[0]) ?? 0) > 0, "\(reached)")

        let finished = try await CLI.runOffPool(["doctor", "--db", path])
        #expect(finished.status == 0, "\(finished.stderr as String)")
        #expect(finished.stderr.contains("compressing bodies"), "\(finished.stderr as String)")
        #expect(try Self.column("SELECT DISTINCT typeof(body) FROM contacts WHERE body != ''", in: path) == ["blob"])
        #expect(try Self.column("SELECT contact_body(body) FROM contacts ORDER BY row_id", in: path, functions: true) == bodies)
        #expect(try Self.column("SELECT value FROM sync_state WHERE key LIKE 'bodies.%'", in: path).isEmpty)
    }

    static func column(_ sql: String, in path: String, functions: Bool) throws -> [String] {
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        return try queue.read { db in
            ContactMirror.registerFunctions(db)
            return try String.fetchAll(db, sql: sql)
        }
    }
}

extension CLI {
    /// Starts the binary and kills it with SIGKILL as soon as its standard error matches
    /// `pattern`; returns its exit status (nil when killed) and what it wrote to standard error.
    static func runKilled(_ arguments: [String], whenStderrMatches pattern: Regex<Substring>) throws
        -> (status: Int32?, stderr: String)
    {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["LLVM_PROFILE_FILE"] =
            FileManager.default.temporaryDirectory.appendingPathComponent("intercom-sync-killed-%p.profraw").path
        process.environment = environment
        let errors = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        var text = ""
        while true {
            let chunk = errors.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
            if text.contains(pattern) {
                kill(process.processIdentifier, SIGKILL)
                break
            }
        }
        process.waitUntilExit()
        let killed = process.terminationReason == .uncaughtSignal
        return (killed ? nil : process.terminationStatus, text)
    }
}
