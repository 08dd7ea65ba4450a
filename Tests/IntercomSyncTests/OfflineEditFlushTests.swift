import Foundation
import IntercomSimulator
import Testing

@testable import IntercomSync

/// The flush of offline edits against the simulator: merged three ways per field with the
/// contact as Intercom has it, so that a colleague's change of another field survives, a change
/// of the same field is a conflict that overwrites neither side, and nothing is lost.
@Suite struct OfflineEditFlushTests {
    static func contact(_ harness: SimulatorHarness, _ id: String) async throws -> JSONValue {
        try #require(try await harness.listedContacts()[id])
    }

    @Test func editsMergeFieldByFieldWithChangesMadeOnIntercom() async throws {
        let harness = try await SimulatorHarness.start(contacts: 12)
        defer { Task { await harness.stop() } }
        try await harness.sync.run(.full)
        let ids = Array(try await harness.workspace.contactIDs().prefix(5))
        let time = harness.workspace.clock.now
        func stage(_ id: String, _ changes: [ContactField: JSONValue]) throws {
            try harness.mirror.stageEdit(ContactPatch(changes), to: id, now: time)
        }
        // 0: nobody else touches it. 1: a colleague changes another field. 2: a colleague
        // changes the same field. 3: two custom attributes, one each. 4: deleted meanwhile.
        try stage(ids[0], [.name: "Edited Zero"])
        try stage(ids[1], [.name: "Edited One"])
        try stage(ids[2], [.name: "Mine Two", .phone: "+15550102"])
        try stage(ids[3], [.customAttribute("plan"): "offline-edit-plan"])
        try stage(ids[4], [.name: "Edited Four"])
        let baseName2 = try await Self.contact(harness, ids[2])["name"]
        harness.workspace.clock.advance(by: 5)
        try await harness.workspace.edit(id: ids[1], fieldsJSON: #"{"phone":"+15550999"}"#)
        try await harness.workspace.edit(id: ids[2], fieldsJSON: #"{"name":"Theirs Two"}"#)
        try await harness.workspace.edit(id: ids[3], fieldsJSON: #"{"custom_attributes":{"region":"emea"}}"#)
        try await harness.workspace.delete(id: ids[4])

        let summary = try await harness.flush()
        let afterFlush = try harness.mirror.outboxEntries()
        #expect(summary.contactsUpdated == 3 && summary.conflicts == 1 && summary.failed == 1, "\(summary)\n\(afterFlush)")
        #expect(summary.conflictInOutbox == 1 && summary.needsAttention)

        // Intercom holds every edit that met no change of its field, and every change made there.
        #expect(try await Self.contact(harness, ids[0])["name"] == "Edited Zero")
        let one = try await Self.contact(harness, ids[1])
        #expect(one["name"] == "Edited One" && one["phone"] == "+15550999")
        let two = try await Self.contact(harness, ids[2])
        #expect(two["name"] == "Theirs Two", "a conflicting field is not sent")
        #expect(two["phone"] == "+15550102", "the rest of the patch is")
        let three = try await Self.contact(harness, ids[3])["custom_attributes"]
        #expect(three?["plan"] == "offline-edit-plan" && three?["region"] == "emea")

        // The mirror: Intercom's versions, with the edit in conflict still on top.
        #expect(try harness.mirror.contact(id: ids[1])?.contact.phone == "+15550999")
        #expect(try harness.mirror.contact(id: ids[2])?.contact.name == "Mine Two")
        #expect(try harness.mirror.pendingEdits(of: ids[0]).isEmpty)
        #expect(try harness.mirror.pendingEdits(of: ids[2]).map(\.field) == [.name])
        #expect(try harness.tombstonedIDs().contains(ids[4]))

        let entries = try harness.mirror.outboxEntries()
        let conflict = try #require(entries.first { $0.state == .conflict })
        #expect(conflict.contactID == ids[2])
        let recorded = try JSONValue(jsonText: conflict.payload)["conflicts"]
        #expect(
            recorded
                == .array([.object(["field": "name", "base": baseName2 ?? .null, "mine": "Mine Two", "theirs": "Theirs Two"])])
        )
        let failed = try #require(entries.first { $0.state == .failed })
        #expect(failed.contactID == ids[4] && failed.lastError?.message.contains("gone from Intercom") == true)
        #expect(entries.filter { $0.state == .sent }.count == 3)
    }

    /// A flush killed after its `PUT` went out leaves the entry in flight; the next flush merges
    /// again, finds the edits already on Intercom, and sends nothing twice.
    @Test func anUpdateWhoseAnswerWasLostIsMergedAgainAndNotResent() async throws {
        let harness = try await SimulatorHarness.start(contacts: 3)
        defer { Task { await harness.stop() } }
        try await harness.sync.run(.full)
        let id = try #require(try await harness.workspace.contactIDs().first)
        let time = harness.workspace.clock.now
        let staged = try harness.mirror.stageEdit(ContactPatch([.name: "Once"]), to: id, now: time)
        // As if a flush had marked it in flight and sent the PUT, then died.
        _ = try await harness.mirror.prepareUpdate(seq: try #require(staged.seq), now: time)
        try await harness.workspace.edit(id: id, fieldsJSON: #"{"name":"Once"}"#)

        let summary = try await harness.flush()
        #expect(summary.contactsUpdated == 1 && summary.conflicts == 0, "\(summary)")
        let puts = await harness.workspace.requestLog().filter { $0.method == "PUT" }
        #expect(puts.isEmpty, "the edit was found on Intercom: nothing to send")
        #expect(try harness.mirror.pendingEdits(of: id).isEmpty)
        #expect(try harness.mirror.outboxEntries().map(\.state) == [.sent])
    }

    /// An edit made while its entry is in flight is not lost: it waits in a new entry, against
    /// the value the flush sent.
    @Test func anEditMadeDuringTheFlushWaitsForTheNext() async throws {
        let harness = try await SimulatorHarness.start(contacts: 3)
        defer { Task { await harness.stop() } }
        try await harness.sync.run(.full)
        let id = try #require(try await harness.workspace.contactIDs().first)
        let time = harness.workspace.clock.now
        let first = try harness.mirror.stageEdit(ContactPatch([.name: "First"]), to: id, now: time)
        let readiness = try await harness.mirror.prepareUpdate(seq: try #require(first.seq), now: time)
        guard case .edits(_, let edits) = readiness else { Issue.record("not ready: \(readiness)"); return }
        let second = try harness.mirror.stageEdit(ContactPatch([.name: "Second"]), to: id, now: time + 1)
        #expect(second.seq != first.seq, "the entry in flight is not the one that waits")
        try await harness.workspace.edit(id: id, fieldsJSON: #"{"name":"First"}"#)
        let body = try #require(try await harness.listedContacts()[id]).jsonText
        _ = try await harness.mirror.completeUpdate(
            seq: first.seq!, contactID: id, edits: edits, outcomes: [.name: .sent("First")], contactJSON: body, now: time + 2)
        #expect(try harness.mirror.pendingEdits(of: id) == [.init(field: .name, base: "First", mine: "Second", server: "First")])
        #expect(try harness.mirror.contact(id: id)?.contact.name == "Second")

        _ = try await harness.flush()
        #expect(try await Self.contact(harness, id)["name"] == "Second")
        #expect(try harness.mirror.pendingEdits(of: id).isEmpty)
    }

    /// Dropping a failed update entry while a newer one stands for the contact's edits leaves
    /// those edits to the newer one.
    @Test func droppingAFailedEntryLeavesTheEditsOfANewerOne() async throws {
        let harness = try await SimulatorHarness.start(contacts: 2)
        defer { Task { await harness.stop() } }
        try await harness.sync.run(.full)
        let id = try #require(try await harness.workspace.contactIDs().first)
        let first = try harness.mirror.stageEdit(ContactPatch([.name: "Kept", .email: "taken@example.com"]), to: id, now: 1)
        let holder = try await harness.workspace.create(fieldsJSON: #"{"email":"taken@example.com"}"#)
        let failed = try await harness.flush()
        #expect(failed.failed == 1, "409: another contact has the email: \(failed)")
        let error = try #require(try harness.mirror.outboxEntry(seq: first.seq!)?.lastError)
        #expect(error.status == 409 && error.message.contains(holder), "the entry names the holder: \(error)")
        let second = try harness.mirror.stageEdit(
            ContactPatch([
                .email: .string(
                    try #require(try harness.mirror.pendingEdits(of: id).first { $0.field == .email }?.base?.string))
            ]), to: id, now: 2)
        #expect(second.seq != first.seq && second.pendingFields == [.name], "\(second)")
        _ = try harness.mirror.dropOutboxEntry(seq: first.seq!, cascade: false)
        #expect(try harness.mirror.pendingEdits(of: id).map(\.field) == [.name])
        let summary = try await harness.flush()
        #expect(summary.contactsUpdated == 1, "\(summary)")
        #expect(try await harness.listedContacts()[id]?["name"] == "Kept")
    }

    /// A field in conflict edited again stays in conflict, with the new value as its "mine":
    /// nothing is sent for it until a person chooses, and keeping mine sends the new value.
    @Test func reEditingAFieldInConflictRenewsTheConflict() async throws {
        let harness = try await SimulatorHarness.start(contacts: 2)
        defer { Task { await harness.stop() } }
        try await harness.sync.run(.full)
        let id = try #require(try await harness.workspace.contactIDs().first)
        try harness.mirror.stageEdit(ContactPatch([.name: "Mine A"]), to: id, now: 1)
        try await harness.workspace.edit(id: id, fieldsJSON: #"{"name":"Theirs"}"#)
        _ = try await harness.flush()
        let again = try harness.mirror.stageEdit(ContactPatch([.name: "Mine B"]), to: id, now: 2)
        #expect(again.seq == nil && again.pendingFields.isEmpty, "\(again)")
        let conflict = try #require(try harness.mirror.editConflicts().first)
        #expect(conflict.fields.first?.mine == "Mine B")
        _ = try harness.mirror.resolveConflict(seq: conflict.seq, keep: .mine, field: nil, now: 3)
        _ = try await harness.flush()
        #expect(try await harness.listedContacts()[id]?["name"] == "Mine B")
    }

    /// A field in conflict edited to Intercom's value is in conflict no more: the entry is
    /// settled, and nothing is sent.
    @Test func editingAConflictToIntercomsValueSettlesIt() async throws {
        let harness = try await SimulatorHarness.start(contacts: 2)
        defer { Task { await harness.stop() } }
        try await harness.sync.run(.full)
        let id = try #require(try await harness.workspace.contactIDs().first)
        try harness.mirror.stageEdit(ContactPatch([.name: "Mine", .phone: "+15550111"]), to: id, now: 1)
        try await harness.workspace.edit(id: id, fieldsJSON: #"{"name":"Theirs","phone":"+15550222"}"#)
        _ = try await harness.flush()
        let conflict = try #require(try harness.mirror.editConflicts().first)
        #expect(conflict.fields.map(\.field) == [.name, .phone])
        _ = try harness.mirror.stageEdit(ContactPatch([.name: "Theirs"]), to: id, now: 2)
        #expect(try harness.mirror.editConflicts().first?.fields.map(\.field) == [.phone], "the name agrees now")
        _ = try harness.mirror.stageEdit(ContactPatch([.phone: "+15550222"]), to: id, now: 3)
        #expect(try harness.mirror.editConflicts().isEmpty)
        let entry = try #require(try harness.mirror.outboxEntry(seq: conflict.seq))
        #expect(entry.state == .superseded && entry.lastError?.code == "resolved")
        #expect(try harness.mirror.pendingEdits(of: id).isEmpty)
        let requests = await harness.workspace.requestLog().count
        let summary = try await harness.flush()
        #expect(summary.queued == 0 && !summary.needsAttention, "\(summary)")
        #expect(await harness.workspace.requestLog().count == requests)
    }
}
