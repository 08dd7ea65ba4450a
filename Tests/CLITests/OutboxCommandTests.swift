import Foundation
import GRDB
import IntercomSimulator
import Testing

@testable import IntercomSync

/// `contacts create`, `messages send` and `outbox list|flush|retry|drop` as a user runs them,
/// against a simulator in this process over loopback.
@Suite(.serialized) struct OutboxCommandTests {
    static func json(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    /// A simulator with `contacts` contacts and a mirror synced with it.
    static func synced(contacts: Int, latency: Int = 0) async throws -> (IntercomSimulator, Workspace, [String: String]) {
        let simulator = try await SyncCommandTests.simulator(contacts: contacts, latency: latency)
        let workspace = try Workspace(contacts: 0)
        let token = ["INTERCOM_ACCESS_TOKEN": simulator.accessToken]
        let sync = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync"], db: workspace.db, simulator: simulator), environment: token)
        precondition(sync.status == 0, sync.stderr)
        return (simulator, workspace, token)
    }

    @Test func createSendFlushAndList() async throws {
        let (simulator, workspace, token) = try await Self.synced(contacts: 3)
        defer { Task { await simulator.stop() } }
        let db = ["--db", workspace.db]
        let created = try CLI.run(
            [
                "contacts", "create", "--email", "ann@example.com", "--name", "Ann O'Neil", "--phone", "+44 20 7946 0958",
                "--attribute", "seats=3", "--json",
            ] + db)
        #expect(created.status == 0, "\(created.stderr)")
        let localID = try #require((try Self.json(created.stdout) as? [String: Any])?["id"] as? String)
        let pending = try CLI.run(["contacts", "get", localID, "--offline", "--json"] + db)
        #expect(pending.stdout.contains("\"state\":\"pending\""), "\(pending.stdout)")

        let existing = await simulator.workspace.contactIDs()[0]
        let toNew = try CLI.run(["messages", "send", "--to", localID, "--body", "Welcome, Ann"] + db)
        #expect(toNew.status == 0, "\(toNew.stderr)")
        #expect(toNew.stdout.contains("after its contact's create"))
        let toOld = try CLI.run(
            ["messages", "send", "--to", existing, "--type", "email", "--subject", "Hello", "--body", "<p>Hi</p>"] + db)
        #expect(toOld.status == 0, "\(toOld.stderr)")

        let flush = try await CLI.runOffPool(
            SyncCommandTests.arguments(["outbox", "flush", "--json"], db: workspace.db, simulator: simulator),
            environment: token)
        #expect(flush.status == 0, "\(flush.stderr)")
        let summary = try #require(try Self.json(flush.stdout) as? [String: Any])
        #expect(summary["contacts_created"] as? Int == 1)
        #expect(summary["messages_sent"] as? Int == 2)

        let list = try CLI.run(["outbox", "list", "--json"] + db)
        let entries = try #require(try Self.json(list.stdout) as? [[String: Any]])
        #expect(entries.map { $0["state"] as? String } == ["sent", "sent", "sent"])
        let remoteID = try #require(entries[0]["remote_id"] as? String)
        #expect(entries[1]["contact_id"] as? String == remoteID, "the message follows the remapped id")
        let resolved = try CLI.run(["contacts", "get", localID, "--offline", "--json"] + db)
        #expect(resolved.stdout.contains("\"id\":\"\(remoteID)\""), "the local id is an alias")
        let firstTwo = try CLI.run(["outbox", "list", "--limit", "2", "--json"] + db)
        #expect(try (Self.json(firstTwo.stdout) as? [[String: Any]])?.map { $0["seq"] as? Int } == [1, 2])
        #expect(firstTwo.stderr.contains("showing the first 2 of 3 entries"))
        let table = try CLI.run(["outbox", "list", "--state", "sent"] + db)
        #expect(table.stdout.contains("create_contact") && table.stdout.contains(remoteID))
        for result in [flush, list, table] {
            #expect(!result.stdout.contains(simulator.accessToken) && !result.stderr.contains(simulator.accessToken))
        }
    }

    @Test func badInputIsRefusedAndWritesNothing() throws {
        let workspace = try Workspace(contacts: 0)
        let db = ["--db", workspace.db]
        let invalid = try CLI.run(["contacts", "create", "--email", "ann.example.com", "--phone", "4420"] + db)
        #expect(invalid.status == 2)
        #expect(invalid.stderr.contains("email: \"ann.example.com\" has no @"))
        #expect(invalid.stderr.contains("phone: \"4420\" must start with +"))
        let attribute = try CLI.run(["contacts", "create", "--email", "a@b.io", "--attribute", "plan"] + db)
        #expect(attribute.status == 2)
        #expect(attribute.stderr.contains("name=value"))
        let noSubject = try CLI.run(["messages", "send", "--to", "a@b.io", "--type", "email", "--body", "x"] + db)
        #expect(noSubject.status == 2)
        #expect(noSubject.stderr.contains("subject"))
        let badType = try CLI.run(["messages", "send", "--to", "a@b.io", "--type", "sms", "--body", "x"] + db)
        #expect(badType.status == 2)
        #expect(!FileManager.default.fileExists(atPath: workspace.db), "nothing was written")

        _ = try CLI.run(["contacts", "create", "--email", "a@b.io"] + db)
        let duplicate = try CLI.run(["contacts", "create", "--email", "A@B.io"] + db)
        #expect(duplicate.status == 1)
        #expect(duplicate.stderr.contains("already belongs to contact local_"))
        let allowed = try CLI.run(["contacts", "create", "--email", "A@B.io", "--allow-duplicate-email"] + db)
        #expect(allowed.status == 0)
        for command in [
            ["contacts", "create"], ["messages", "send"], ["outbox", "flush"], ["outbox", "list"],
            ["outbox", "retry"], ["outbox", "drop"],
        ] {
            let help = try CLI.run(command + ["--help"])
            #expect(help.stdout.contains("Example"), "\(command)")
        }
    }

    @Test func failuresExitThreeAndCanBeRetriedOrDropped() async throws {
        let (simulator, workspace, token) = try await Self.synced(contacts: 2)
        defer { Task { await simulator.stop() } }
        let db = ["--db", workspace.db]
        let gone = await simulator.workspace.contactIDs()[0]
        _ = try CLI.run(["messages", "send", "--to", gone, "--body", "Too late"] + db)
        try await simulator.workspace.delete(id: gone)
        let flushArguments = SyncCommandTests.arguments(["outbox", "flush"], db: workspace.db, simulator: simulator)
        let flush = try await CLI.runOffPool(flushArguments, environment: token)
        #expect(flush.status == 3, "\(flush.stderr)")
        #expect(flush.stdout.contains("1 failed"))
        #expect(flush.stderr.contains("outbox list --state failed"))
        let failed = try CLI.run(["outbox", "list", "--state", "failed"] + db)
        #expect(failed.stdout.contains("404 not_found: User Not Found (request "))

        let limited = try CLI.run(["outbox", "list", "--limit", "1", "--json"] + db)
        #expect(limited.stderr.isEmpty, "one entry in all: no note")
        let retry = try CLI.run(["outbox", "retry", "1"] + db)
        #expect(retry.status == 0)
        #expect(try CLI.run(["outbox", "list", "--state", "pending", "--json"] + db).stdout.contains("\"seq\":1"))
        let drop = try CLI.run(["outbox", "drop", "1"] + db)
        #expect(drop.status == 0)
        #expect(try CLI.run(["outbox", "list"] + db).stdout.contains("the outbox is empty"))
        let clean = try await CLI.runOffPool(flushArguments, environment: token)
        #expect(clean.status == 0, "\(clean.stderr)")
    }

    @Test func aRefusedTokenStopsTheFlush() async throws {
        let (simulator, workspace, _) = try await Self.synced(contacts: 1)
        defer { Task { await simulator.stop() } }
        _ = try CLI.run(["contacts", "create", "--email", "a@b.io", "--db", workspace.db])
        let flush = try await CLI.runOffPool(
            SyncCommandTests.arguments(["outbox", "flush"], db: workspace.db, simulator: simulator),
            environment: ["INTERCOM_ACCESS_TOKEN": "revoked"])
        #expect(flush.status == 1)
        #expect(flush.stderr.contains("the flush stopped") && flush.stderr.contains("log in again"))
        let list = try CLI.run(["outbox", "list", "--json", "--db", workspace.db])
        // The workspace check met the 401 first: the entry was never tried.
        #expect(list.stdout.contains("\"state\":\"pending\"") && list.stdout.contains("\"attempts\":0"))
    }

    /// Kill -9 of a flush at random moments over a queue of creates, imported contacts (whose
    /// entries the flush writes) and messages (a local write and its outbox entry commit together, creates happen once, a message is sent at most once): afterwards
    /// nothing is lost, no message reached Intercom twice, and each staged or imported email
    /// exists once. The kills land at moments drawn from the quickest of the first trials'
    /// clean flushes, which run to their end, so they fall inside a flush on a slow machine too.
    @Test func killedFlushesLoseNothingAndSendNothingTwice() async throws {
        let (simulator, reference, token) = try await Self.synced(contacts: 20, latency: 6)
        defer { Task { await simulator.stop() } }
        let recipients = await simulator.workspace.contactIDs()
        var trialKills = CLI.FlushKills()
        let trials = 30
        let cleanTrials = 3
        for trial in 0..<trials {
            let workspace = try Workspace(contacts: 0)
            try FileManager.default.copyItem(atPath: reference.db, toPath: workspace.db)
            let mirror = try ContactMirror.open(at: workspace.db, mode: .existing)
            var staged: [(seq: Int64, email: String?, body: String?)] = []
            for index in 0..<5 {
                let email = "t\(trial)-\(index)@example.com"
                let contact = try mirror.stageContact(ContactDraft(email: email), now: 1_767_225_600)
                staged.append((contact.seq, email, nil))
                let body = "trial \(trial) new \(index)"
                let message = try mirror.stageMessage(MessageDraft(kind: .inApp, body: body, to: contact.localID), now: 1)
                staged.append((message.seq, nil, body))
            }
            let imported = (0..<5).map { "i\(trial)-\($0)@example.com" }
            var reader = CSVReader(bytes: Array(("email\n" + imported.joined(separator: "\n")).utf8))
            _ = try ContactImport(mirror: mirror).run(&reader, now: 1_767_225_600)
            for (index, recipient) in recipients.prefix(10).enumerated() {
                let body = "trial \(trial) old \(index)"
                staged.append(
                    (try mirror.stageMessage(MessageDraft(kind: .inApp, body: body, to: recipient), now: 1).seq, nil, body))
            }
            let arguments = SyncCommandTests.arguments(["outbox", "flush"], db: workspace.db, simulator: simulator)
            for _ in 0..<(trial < cleanTrials ? 0 : trial % 3 == 0 ? 2 : 1) {
                try await trialKills.kill(arguments, environment: token)
            }
            let finish = try await trialKills.run(arguments, environment: token, clean: trial < cleanTrials)
            #expect(finish.status == 0 || finish.status == 3, "trial \(trial): \(finish.stderr)")

            let entries = Dictionary(uniqueKeysWithValues: try mirror.outboxEntries().map { ($0.seq, $0) })
            #expect(entries.count == staged.count + imported.count, "trial \(trial): an entry was lost")
            #expect(try mirror.importedCreatesWaiting() == 0, "trial \(trial)")
            let received = try await simulator.workspace.sentMessages().compactMap { try JSONValue(jsonText: $0)["body"]?.string }
            let emails = try await simulator.workspace.exportContacts().compactMap {
                try JSONValue(jsonText: $0)["email"]?.string
            }
            for email in imported {
                #expect(emails.filter { $0 == email }.count == 1, "trial \(trial): \(email)")
                let entry = entries.values.first { $0.kind == .createContact && $0.payload.contains(email) }
                #expect(entry?.state == .sent, "trial \(trial): \(email)")
            }
            for item in staged {
                let entry = try #require(entries[item.seq], "trial \(trial): #\(item.seq) lost")
                #expect([.sent, .unknown].contains(entry.state), "trial \(trial): #\(item.seq) is \(entry.state)")
                if let email = item.email {
                    #expect(emails.filter { $0 == email }.count == 1, "trial \(trial): \(email)")
                    #expect(entry.state == .sent)
                    #expect(try mirror.contact(id: entry.remoteID ?? "")?.contact.email == email)
                }
                if let body = item.body {
                    let copies = received.filter { $0 == body }.count
                    #expect(copies <= 1, "trial \(trial): \"\(body)\" reached Intercom \(copies) times")
                    if entry.state == .sent { #expect(copies == 1, "trial \(trial): \"\(body)\" sent but not received") }
                }
            }
        }
        #expect(
            trialKills.landedMostly,
            "most kills should land during the flush (a clean one took \(trialKills.cleanMilliseconds) ms)")
    }
}
