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
        let marked = try CLI.run(["contacts", "get", ids[0], "--offline"] + db)
        #expect(marked.stdout.contains("edited        custom_attributes.plan, name (shown here"), "\(marked.stdout)")
        let markedJSON = try Self.json(try CLI.run(["contacts", "get", ids[0], "--offline", "--json"] + db).stdout)
        let pending = try #require((markedJSON["mirror"] as? [String: Any])?["pending_edits"] as? [[String: Any]])
        #expect(pending.map { $0["field"] as? String } == ["custom_attributes.plan", "name"])
        #expect(pending.first { $0["field"] as? String == "name" }?["base"] as? String == baseName)
        let listed = try CLI.run(["outbox", "list"] + db).stdout
        #expect(listed.contains("edits custom_attributes.plan, name"), "\(listed)")
        let listedJSON = try CLI.run(["outbox", "list", "--json"] + db).stdout
        #expect(listedJSON.contains(#""pending_edits":[{"#), "\(listedJSON)")
        let table = try CLI.run(["contacts", "query"] + db).stdout.split(separator: "\n")
        #expect(table.filter { $0.hasSuffix("synced, edited") }.count == 2, "\(table)")
        #expect(table.first { $0.hasPrefix(ids[0]) }?.hasSuffix("synced, edited") == true, "\(table)")

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

    /// What waits for a contact is said where a person looks: an archive not sent yet and an
    /// edit Intercom refused by `contacts get`; edits a delete won over end superseded, which
    /// needs no one, so the flushes after it exit 0.
    @Test func pendingArchivesRefusedEditsAndSupersededEditsAreToldApart() async throws {
        let (simulator, workspace, token) = try await OutboxCommandTests.synced(contacts: 3)
        defer { Task { await simulator.stop() } }
        let db = ["--db", workspace.db]
        let ids = await simulator.workspace.contactIDs()
        let flush = SyncCommandTests.arguments(["outbox", "flush"], db: workspace.db, simulator: simulator)

        #expect(try CLI.run(["contacts", "update", ids[0], "--name", "Doomed"] + db).status == 0)
        #expect(try CLI.run(["contacts", "delete", ids[0]] + db).status == 0)
        #expect(try CLI.run(["contacts", "archive", ids[1]] + db).status == 0)
        let archived = try CLI.run(["contacts", "get", ids[1], "--offline"] + db)
        #expect(archived.stderr.contains("is to be archived (#") && archived.stderr.contains("outbox drop"), "\(archived.stderr)")

        #expect(try CLI.run(["contacts", "update", ids[2], "--email", "taken@example.com"] + db).status == 0)
        _ = try await simulator.workspace.create(fieldsJSON: #"{"email":"taken@example.com"}"#)
        let first = try await CLI.runOffPool(flush, environment: token)
        #expect(first.status == 3, "the refused edit needs a person: \(first.stderr)")
        let refused = try CLI.run(["contacts", "get", ids[2], "--offline"] + db)
        #expect(refused.stderr.contains("Intercom refused your edit (#"), "\(refused.stderr)")
        #expect(refused.stdout.contains("edited        email"), "\(refused.stdout)")
        let superseded = try CLI.run(["outbox", "list", "--state", "superseded"] + db)
        #expect(superseded.stdout.contains("superseded") && superseded.stdout.contains(ids[0]), "\(superseded.stdout)")

        let failed = try #require(
            try ContactMirror.open(at: workspace.db, mode: .existing).outboxEntries(states: [.failed]).first?.seq)
        #expect(try CLI.run(["outbox", "drop", String(failed)] + db).status == 0)
        let again = try await CLI.runOffPool(flush, environment: token)
        #expect(again.status == 0, "nothing needs a person: \(again.stderr)")
        let status = try CLI.run(["status", "--json"] + db)
        #expect(status.stdout.contains(#""superseded":1"#), "\(status.stdout)")
    }

    /// `contacts get` shows a contact's notes: a colleague's, read by a refresh and shown as
    /// text from then on, offline too, and one written offline, as pending until flushed.
    @Test func contactsGetShowsTheNotesReadAndThoseWaiting() async throws {
        let (simulator, workspace, token) = try await OutboxCommandTests.synced(contacts: 2)
        defer { Task { await simulator.stop() } }
        let db = ["--db", workspace.db]
        let id = await simulator.workspace.contactIDs()[0]
        let client = IntercomClient(
            connection: IntercomConnection(baseURL: URL(string: simulator.baseURL)!, accessToken: simulator.accessToken))
        _ = try await client.sendJSON(
            "POST", "/contacts/\(id)/notes", json: #"{"body":"<p>Asked about <b>refunds</b> &amp; invoices</p>"}"#)
        let staged = try CLI.run(["contacts", "note", id, "Call back on Monday"] + db)
        #expect(staged.status == 0, "\(staged.stderr)")

        let offline = try CLI.run(["contacts", "get", id, "--offline"] + db)
        #expect(offline.stdout.contains("Call back on Monday") && offline.stdout.contains("pending (#"), "\(offline.stdout)")
        #expect(!offline.stdout.contains("refunds"), "not read yet")
        let refreshed = try await CLI.runOffPool(
            SyncCommandTests.arguments(["contacts", "get", id, "--refresh"], db: workspace.db, simulator: simulator),
            environment: token)
        #expect(refreshed.stdout.contains("Asked about refunds & invoices"), "\(refreshed.stdout)\(refreshed.stderr)")

        let flush = try await CLI.runOffPool(
            SyncCommandTests.arguments(["outbox", "flush"], db: workspace.db, simulator: simulator), environment: token)
        #expect(flush.status == 0, "\(flush.stderr)")
        let json = try Self.json(try CLI.run(["contacts", "get", id, "--offline", "--json"] + db).stdout)
        let notes = try #require((json["mirror"] as? [String: Any])?["notes"] as? [[String: Any]])
        #expect(
            notes.map { $0["body"] as? String } == ["Call back on Monday", "<p>Asked about <b>refunds</b> &amp; invoices</p>"])
        #expect(notes.allSatisfy { $0["id"] is String && $0["outbox_seq"] is NSNull && $0["author_name"] is String })
    }

    /// 300 contacts edited offline (name, phone, an attribute) while Intercom changes 150 of
    /// them, 50 on the same field and 100 on another, then one flush: Intercom holds every edit
    /// of both sides that met no change of its field, the 50 races wait in conflict with their
    /// three values, and keeping ours puts ours on Intercom. No edit is lost.
    @Test func threeHundredEditsRacedOnIntercomLoseNothing() async throws {
        let (simulator, workspace, token) = try await OutboxCommandTests.synced(contacts: 300)
        defer { Task { await simulator.stop() } }
        let ids = await simulator.workspace.contactIDs()
        let mirror = try ContactMirror.open(at: workspace.db, mode: .existing)
        var before: [String: JSONValue] = [:]
        for body in await simulator.workspace.exportContacts() {
            let contact = try JSONValue(jsonText: body)
            before[contact["id"]!.string!] = contact
        }
        for (index, id) in ids.enumerated() {
            let patch = ContactPatch([
                .name: .string("Offline \(index)"), .phone: .string("+1555200\(String(format: "%04d", index))"),
                .customAttribute("plan"): .string("offline-\(index)"),
            ])
            try mirror.stageEdit(patch, to: id, now: 1_767_225_600)
        }
        for (index, id) in ids.prefix(150).enumerated() {
            let change = index < 50 ? #"{"name":"Server \#(index)"}"# : #"{"custom_attributes":{"region":"r-\#(index)"}}"#
            try await simulator.workspace.edit(id: id, fieldsJSON: change)
        }
        let arguments = SyncCommandTests.arguments(["outbox", "flush", "--json"], db: workspace.db, simulator: simulator)
        let flush = try await CLI.runOffPool(arguments, environment: token)
        #expect(flush.status == 3, "\(flush.stderr)")
        let summary = try Self.json(flush.stdout)
        #expect(summary["contacts_updated"] as? Int == 250 && summary["conflicts"] as? Int == 50, "\(summary)")

        func intercom() async throws -> [String: JSONValue] {
            var contacts: [String: JSONValue] = [:]
            for body in await simulator.workspace.exportContacts() {
                let contact = try JSONValue(jsonText: body)
                contacts[contact["id"]!.string!] = contact
            }
            return contacts
        }
        var now = try await intercom()
        for (index, id) in ids.enumerated() {
            let contact = try #require(now[id])
            #expect(contact["phone"]?.string == "+1555200\(String(format: "%04d", index))", "\(id)")
            #expect(contact["custom_attributes"]?["plan"]?.string == "offline-\(index)", "\(id)")
            #expect(contact["name"]?.string == (index < 50 ? "Server \(index)" : "Offline \(index)"), "\(id)")
            if (50..<150).contains(index) { #expect(contact["custom_attributes"]?["region"]?.string == "r-\(index)") }
            #expect(contact["email"] == before[id]?["email"] && contact["role"] == before[id]?["role"], "\(id)")
        }
        let conflicts = try mirror.editConflicts()
        #expect(conflicts.count == 50)
        for conflict in conflicts {
            let index = try #require(ids.firstIndex(of: conflict.contactID))
            #expect(
                conflict.fields == [
                    EditConflict.Field(
                        field: .name, base: before[conflict.contactID]?["name"], mine: .string("Offline \(index)"),
                        theirs: .string("Server \(index)"))
                ], "\(conflict)")
            let resolved = try CLI.run(["outbox", "resolve", String(conflict.seq), "--keep", "mine", "--db", workspace.db])
            #expect(resolved.status == 0, "\(resolved.stderr)")
        }
        let again = try await CLI.runOffPool(arguments, environment: token)
        #expect(again.status == 0, "\(again.stderr)")
        now = try await intercom()
        for (index, id) in ids.enumerated() { #expect(now[id]?["name"]?.string == "Offline \(index)", "\(id)") }
        #expect(
            try mirror.outboxEntries().allSatisfy {
                $0.state == .sent || ($0.state == .superseded && $0.lastError?.code == "resolved")
            })
    }

    /// Kill -9 of flushes of edits at random moments, with lost answers and 5xx on: each edit
    /// ends sent or deferred for the next flush, never lost, and no field the user did not
    /// change reaches Intercom. The kills land within a clean flush's measured time.
    @Test func killedFlushesOfEditsLoseNoEdit() async throws {
        // One mirror for every trial: each trial's edits are made on what the last one left.
        let (simulator, workspace, token) = try await OutboxCommandTests.synced(contacts: 30, latency: 4)
        defer { Task { await simulator.stop() } }
        let ids = await simulator.workspace.contactIDs()
        let mirror = try ContactMirror.open(at: workspace.db, mode: .existing)
        var trialKills = CLI.FlushKills()
        for trial in 0..<9 {
            var original: [String: JSONValue] = [:]
            for body in await simulator.workspace.exportContacts() {
                let contact = try JSONValue(jsonText: body)
                original[contact["id"]!.string!] = contact
            }
            for (index, id) in ids.enumerated() {
                try mirror.stageEdit(
                    ContactPatch([.name: .string("t\(trial) c\(index)"), .customAttribute("trial"): .int(Int64(trial))]),
                    to: id, now: 1_767_225_600)
            }
            var faults = FaultPlan()
            faults.latencyMilliseconds = 4
            if trial >= 3 {
                faults.serverErrorRate = 0.1
                faults.lostResponseRate = 0.1
                faults.lostResponseDelaySeconds = 2
                faults.seed = UInt64(trial)
            }
            await simulator.workspace.setFaults(faults)
            let arguments = SyncCommandTests.arguments(
                ["outbox", "flush", "--timeout", "1"], db: workspace.db, simulator: simulator)
            if trial >= 3 { try await trialKills.kill(arguments, environment: token) }
            // Flushes until nothing is deferred any more (faults off at the end).
            var finish = try await trialKills.run(arguments, environment: token, clean: trial < 3)
            await simulator.workspace.setFaults(FaultPlan())
            finish = try await CLI.runOffPool(arguments, environment: token)
            #expect(finish.status == 0, "trial \(trial): \(finish.stderr)")

            for body in await simulator.workspace.exportContacts() {
                let contact = try JSONValue(jsonText: body)
                guard let id = contact["id"]?.string, let index = ids.firstIndex(of: id), let before = original[id] else {
                    continue
                }
                #expect(contact["name"]?.string == "t\(trial) c\(index)", "trial \(trial): \(id)")
                #expect(contact["custom_attributes"]?["trial"]?.int == trial, "trial \(trial): \(id)")
                for field in ["email", "phone", "role", "external_id", "owner_id", "avatar"] {
                    #expect(contact[field] == before[field], "trial \(trial): \(id) \(field) was never edited")
                }
                var attributes = contact["custom_attributes"]
                var beforeAttributes = before["custom_attributes"]
                if case .object(var map)? = attributes { map["trial"] = nil; attributes = .object(map) }
                if case .object(var map)? = beforeAttributes { map["trial"] = nil; beforeAttributes = .object(map) }
                #expect(attributes == beforeAttributes, "trial \(trial): \(id)'s other attributes")
            }
            #expect(try mirror.outboxEntries().allSatisfy { $0.state == .sent }, "trial \(trial)")
            #expect(try ids.allSatisfy { try mirror.pendingEdits(of: $0).isEmpty }, "trial \(trial)")
        }
        #expect(
            trialKills.landedMostly,
            "most kills should land during the flush (a clean one took \(trialKills.cleanMilliseconds) ms)")
    }

    /// Kill -9 of flushes of archives, deletes and notes at random moments, with lost answers
    /// and 5xx on: every archive and delete ends done on Intercom, and every note is on
    /// Intercom once, or, when its answer may have been lost, at most once and `unknown` for a
    /// person to decide. The kills land within a clean flush's measured time.
    @Test func killedFlushesOfArchivesDeletesAndNotesLoseNothing() async throws {
        let perTrial = 4
        let trials = 7
        let (simulator, workspace, token) = try await OutboxCommandTests.synced(
            contacts: 3 * perTrial * trials, latency: 4)
        defer { Task { await simulator.stop() } }
        let ids = await simulator.workspace.contactIDs()
        let mirror = try ContactMirror.open(at: workspace.db, mode: .existing)
        var trialKills = CLI.FlushKills()
        for trial in 0..<trials {
            let mine = ids[(trial * 3 * perTrial)..<((trial + 1) * 3 * perTrial)]
            let archives = Array(mine.prefix(perTrial))
            let deletes = Array(mine.dropFirst(perTrial).prefix(perTrial))
            let noted = Array(mine.suffix(perTrial))
            for id in archives { _ = try mirror.stageArchive(contact: id, archive: true, now: 1_767_225_600) }
            for id in deletes { _ = try mirror.stageDelete(contact: id, now: 1_767_225_600) }
            for id in noted { _ = try mirror.stageNote("trial \(trial) note", to: id, now: 1_767_225_600) }
            var faults = FaultPlan()
            faults.latencyMilliseconds = 4
            if trial >= 2 {
                faults.serverErrorRate = 0.1
                faults.lostResponseRate = 0.25
                faults.lostResponseDelaySeconds = 2
                faults.seed = UInt64(trial)
            }
            await simulator.workspace.setFaults(faults)
            let arguments = SyncCommandTests.arguments(
                ["outbox", "flush", "--timeout", "1"], db: workspace.db, simulator: simulator)
            if trial >= 2 { try await trialKills.kill(arguments, environment: token) }
            _ = try await trialKills.run(arguments, environment: token, clean: trial < 2)
            await simulator.workspace.setFaults(FaultPlan())
            let finish = try await CLI.runOffPool(arguments, environment: token)
            #expect(finish.status == 0 || finish.status == 3, "trial \(trial): \(finish.stderr)")

            let archived = await simulator.workspace.archivedIDs()
            let deleted = await simulator.workspace.deletedIDs()
            #expect(archives.allSatisfy(archived.contains), "trial \(trial): every archive reached Intercom")
            #expect(deletes.allSatisfy(deleted.contains), "trial \(trial): every delete reached Intercom")
            var notesOnIntercom: [String: Int] = [:]
            for body in await simulator.workspace.exportContacts() {
                let contact = try JSONValue(jsonText: body)
                if let id = contact["id"]?.string { notesOnIntercom[id] = contact["notes"]?["total_count"]?.int ?? 0 }
            }
            let entries = try mirror.outboxEntries()
            for id in noted {
                let entry = try #require(entries.first { $0.kind == .addNote && $0.contactID == id })
                let count = notesOnIntercom[id] ?? -1
                switch entry.state {
                case .sent: #expect(count == 1, "trial \(trial): \(id)'s note sent once")
                case .unknown: #expect(count <= 1, "trial \(trial): \(id)'s note at most once")
                default: Issue.record("trial \(trial): \(id)'s note ended \(entry.state)")
                }
            }
            let gone = Set(archives + deletes)
            #expect(
                entries.filter { gone.contains($0.contactID ?? "") }.allSatisfy { $0.state == .sent },
                "trial \(trial): archives and deletes all sent")
            for id in gone {
                let stored = try #require(try mirror.contact(id: id))
                #expect(stored.state == .tombstoned, "trial \(trial): \(id) hidden in the mirror")
            }
        }
        #expect(
            trialKills.landedMostly,
            "most kills should land during the flush (a clean one took \(trialKills.cleanMilliseconds) ms)")
    }
}
