import Foundation
import IntercomSimulator
import IntercomSync
import Testing

/// Conflicts of offline edits, as an app meets them through the facade: listed with their
/// three values, then settled by keeping ours (sent at the next flush) or Intercom's.
@Suite struct ConflictResolutionTests {
    @Test func aConflictIsShownWithItsThreeValuesAndSettledEitherWay() async throws {
        var configuration = SimulatorConfiguration()
        configuration.seedContacts = 6
        configuration.seed = 3
        let simulator = try await IntercomSimulator.start(configuration)
        defer { Task { await simulator.stop() } }
        let mirror = try IntercomMirror.inMemory(
            connection: IntercomConnection(
                baseURL: URL(string: simulator.baseURL)!, accessToken: simulator.accessToken, timeout: 10))
        try await mirror.sync()
        let ids = Array(await simulator.workspace.contactIDs().prefix(2))
        var names: [String: String] = [:]
        for id in ids {
            names[id] = try #require(try await mirror.contact(id: id)?.contact.name)
            try await mirror.stageEdit(ContactPatch([.name: .string("Ours \(id)"), .phone: "+15550123"]), to: id)
            try await simulator.workspace.edit(id: id, fieldsJSON: #"{"name":"Theirs \#(id)"}"#)
        }
        let edits = try await mirror.pendingEdits(ofContact: ids[0])
        #expect(edits.map(\.field) == [.name, .phone] && edits[0].base == .string(names[ids[0]]!))
        #expect(edits[0].mine == .string("Ours \(ids[0])"))
        let others = await simulator.workspace.contactIDs().filter { !ids.contains($0) }
        #expect(try await mirror.editedContactIDs(among: ids + others) == Set(ids))
        let first = try await mirror.flush()
        #expect(try await mirror.editedContactIDs(among: ids + others) == Set(ids), "the conflicts' edits wait")
        #expect(try await mirror.pendingEdits(ofContact: ids[0]).map(\.field) == [.name], "the phone was sent")
        #expect(first.conflicts == 2 && first.conflictInOutbox == 2 && first.needsAttention)
        #expect(try await mirror.status().outbox.conflict == 2)

        let conflicts = try await mirror.conflicts()
        #expect(conflicts.map(\.contactID) == ids)
        let shown = try #require(conflicts.first?.fields.first)
        #expect(shown.field == .name && shown.base == .string(names[ids[0]]!))
        #expect(shown.mine == .string("Ours \(ids[0])") && shown.theirs == .string("Theirs \(ids[0])"))
        #expect(conflicts.allSatisfy { $0.fields.map(\.field) == [.name] }, "the phone, changed on one side, was sent")

        // Ours over theirs for the first; theirs for the second.
        let kept = try await mirror.resolve(seq: conflicts[0].seq, keep: .mine)
        #expect(kept.pendingFields == [.name] && kept.seq != nil)
        let dropped = try await mirror.resolve(seq: conflicts[1].seq, keep: .theirs, field: .name)
        #expect(dropped.pendingFields.isEmpty && dropped.seq == nil)
        #expect(try await mirror.contact(id: ids[1])?.contact.name == "Theirs \(ids[1])")
        #expect(try await mirror.conflicts().isEmpty)
        await #expect(throws: OutboxError.self) { try await mirror.resolve(seq: conflicts[0].seq, keep: .mine) }
        // Settled, not sent: the entries say how, and need no one.
        let settled = try await mirror.outbox(states: [.superseded])
        #expect(settled.map(\.seq) == conflicts.map(\.seq))
        #expect(settled[0].lastError?.message == "settled by keeping yours, which entry #\(kept.seq!) sends")
        #expect(settled[1].lastError?.message == "settled by keeping Intercom's value")
        #expect(try await mirror.status().outbox.needingAttention == 0)

        let second = try await mirror.flush()
        #expect(second.contactsUpdated == 1 && second.conflicts == 0, "\(second)")
        let exported = await simulator.workspace.exportContacts().map { try? JSONValue(jsonText: $0) }
        func onIntercom(_ id: String) -> JSONValue? { exported.first { $0?["id"]?.string == id } ?? nil }
        #expect(onIntercom(ids[0])?["name"] == .string("Ours \(ids[0])"))
        #expect(onIntercom(ids[1])?["name"] == .string("Theirs \(ids[1])"))
        #expect(onIntercom(ids[0])?["phone"] == "+15550123" && onIntercom(ids[1])?["phone"] == "+15550123")
        #expect(try await mirror.contact(id: ids[0])?.contact.name == "Ours \(ids[0])")
        #expect(try await mirror.status().outbox.needingAttention == 0)
    }
}
