import Foundation
import IntercomSimulator
import Testing

@testable import IntercomSync

/// `contacts update`, `outbox list --state conflict` and `outbox resolve` as a user runs them:
/// an edit made offline, a colleague's change of the same field on Intercom, the conflict shown
/// with its three values, and settled.
@Suite(.serialized) struct ContactsUpdateCommandTests {
    static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func anEditRacedOnIntercomEndsInAConflictThatIsResolved() async throws {
        let (simulator, workspace, token) = try await OutboxCommandTests.synced(contacts: 4)
        defer { Task { await simulator.stop() } }
        let db = ["--db", workspace.db]
        let ids = Array(await simulator.workspace.contactIDs().prefix(2))
        let base = try #require(
            try JSONSerialization.jsonObject(
                with: Data(try CLI.run(["contacts", "get", ids[0], "--offline", "--json"] + db).stdout.utf8)) as? [String: Any])
        let baseName = try #require((base["contact"] as? [String: Any])?["name"] as? String)

        let edited = try CLI.run(
            ["contacts", "update", ids[0], "--name", "Mine Name", "--attribute", "plan=offline-plan", "--json"] + db)
        #expect(edited.status == 0, "\(edited.stderr)")
        let staged = try Self.json(edited.stdout)
        #expect(staged["pending_fields"] as? [String] == ["name", "custom_attributes.plan"])
        let other = try CLI.run(["contacts", "update", ids[1], "--phone", "+15550177"] + db)
        #expect(other.status == 0 && other.stdout.contains("staged #"), "\(other.stderr)")
        let shown = try CLI.run(["contacts", "query", "--name", "Mine Name", "--format", "json"] + db)
        #expect(shown.stdout.contains(ids[0]), "the mirror shows the edit at once: \(shown.stdout)")

        let bad = try CLI.run(["contacts", "update", ids[1], "--phone", "5550177", "--email", "nope"] + db)
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("phone") && bad.stderr.contains("email"), "\(bad.stderr)")
        let none = try CLI.run(["contacts", "update", ids[1]] + db)
        #expect(none.status == 2 && none.stderr.contains("give at least one field"), "\(none.stderr)")

        try await simulator.workspace.edit(id: ids[0], fieldsJSON: #"{"name":"Theirs Name"}"#)
        let flush = try await CLI.runOffPool(
            SyncCommandTests.arguments(["outbox", "flush", "--json"], db: workspace.db, simulator: simulator),
            environment: token)
        #expect(flush.status == 3, "a conflict needs a person: \(flush.stderr)")
        let summary = try Self.json(flush.stdout)
        #expect(summary["contacts_updated"] as? Int == 1 && summary["conflicts"] as? Int == 1)
        #expect(flush.stderr.contains("outbox resolve"), "\(flush.stderr)")

        let list = try CLI.run(["outbox", "list", "--state", "conflict"] + db)
        #expect(list.stdout.contains("conflict"), "\(list.stdout)")
        #expect(
            list.stdout.contains(#"name: base "\#(baseName)", mine "Mine Name", theirs "Theirs Name""#), "\(list.stdout)")
        let seq = try #require(
            list.stdout.split(separator: "\n").dropFirst().first?.split(separator: " ").first.flatMap { Int($0) })

        let wrongField = try CLI.run(["outbox", "resolve", String(seq), "--keep", "mine", "--field", "phone"] + db)
        #expect(wrongField.status != 0 && wrongField.stderr.contains("has no conflict on phone"), "\(wrongField.stderr)")
        let resolved = try CLI.run(["outbox", "resolve", String(seq), "--keep", "mine"] + db)
        #expect(resolved.status == 0 && resolved.stdout.contains("kept yours"), "\(resolved.stderr)")
        let again = try await CLI.runOffPool(
            SyncCommandTests.arguments(["outbox", "flush"], db: workspace.db, simulator: simulator), environment: token)
        #expect(again.status == 0, "\(again.stderr)")
        let onIntercom = await simulator.workspace.exportContacts().compactMap { try? JSONValue(jsonText: $0) }
        let contact = try #require(onIntercom.first { $0["id"]?.string == ids[0] })
        #expect(contact["name"] == "Mine Name" && contact["custom_attributes"]?["plan"] == "offline-plan")
        #expect(onIntercom.first { $0["id"]?.string == ids[1] }?["phone"] == "+15550177")
        let status = try CLI.run(["status", "--json"] + db)
        #expect(status.stdout.contains(#""conflict":0"#), "\(status.stdout)")
    }
}
