import Foundation
import Testing

@testable import IntercomSync

/// Staging offline edits (`ContactMirror.stageEdit`): the mirror shows them at once, one outbox
/// entry stands for a contact's edits, and a pulled version keeps them on top of its own fields.
@Suite struct OfflineEditStagingTests {
    static func contactJSON(
        _ id: String, name: String, phone: String = "+15550001", updatedAt: Int = 100, plan: String = "pro"
    ) -> String {
        #"{"type":"contact","id":"\#(id)","role":"user","email":"\#(id)@example.com","name":"\#(name)","phone":"\#(phone)","created_at":1,"updated_at":\#(updatedAt),"unsubscribed_from_emails":false,"custom_attributes":{"plan":"\#(plan)","seats":3}}"#
    }

    static func mirror(with contacts: String...) throws -> ContactMirror {
        let mirror = try ContactMirror.inMemory()
        _ = try mirror.upsertPage(#"{"type":"list","data":[\#(contacts.joined(separator: ","))]}"#, fetchedAt: 100)
        return mirror
    }

    static func body(_ mirror: ContactMirror, _ id: String) throws -> JSONValue {
        try JSONValue(jsonText: try #require(try mirror.contact(id: id)?.body))
    }

    @Test func anEditShowsAtOnceAndWaitsInOneEntry() async throws {
        let mirror = try Self.mirror(with: Self.contactJSON("c1", name: "Ann Smith"))
        var patch = ContactPatch()
        patch[.name] = "Ann Jones"
        patch[.customAttribute("plan")] = "enterprise"
        let staged = try mirror.stageEdit(patch, to: "c1", now: 200)
        #expect(staged.pendingFields == [.name, .customAttribute("plan")])
        let seq = try #require(staged.seq)

        let stored = try #require(try mirror.contact(id: "c1"))
        #expect(stored.contact.name == "Ann Jones" && stored.contact.customAttributes["plan"] == "enterprise")
        #expect(stored.contact.customAttributes["seats"] == 3, "attributes not edited stay")
        #expect(try Self.body(mirror, "c1")["name"]?.string == "Ann Jones")
        #expect(try mirror.contacts(matching: ContactQuery(search: "jones")).contacts.map(\.id) == ["c1"])
        #expect(try mirror.contacts(matching: ContactQuery(search: "smith")).contacts.isEmpty)

        var phone = ContactPatch()
        phone[.phone] = "+15550002"
        let again = try mirror.stageEdit(phone, to: "c1@example.com", now: 210)
        #expect(again.seq == seq, "a second edit before a flush joins the entry")
        #expect(Set(again.pendingFields) == [.name, .phone, .customAttribute("plan")])
        let entries = try mirror.outboxEntries()
        #expect(entries.map(\.kind) == [.updateContact] && entries[0].contactID == "c1")

        // Edited back to Intercom's values, nothing is left to send.
        var back = ContactPatch()
        back[.name] = "Ann Smith"
        back[.phone] = "+15550001"
        back[.customAttribute("plan")] = "pro"
        let restored = try mirror.stageEdit(back, to: "c1", now: 220)
        #expect(restored.seq == nil && restored.pendingFields.isEmpty)
        #expect(try mirror.outboxEntries().isEmpty)
        #expect(try mirror.contact(id: "c1")?.contact.name == "Ann Smith")
    }

    /// A pull of a newer version updates every field the user did not edit and keeps the edits.
    @Test func aPulledVersionKeepsTheEditsOnTop() async throws {
        let mirror = try Self.mirror(with: Self.contactJSON("c1", name: "Ann Smith"), Self.contactJSON("c2", name: "Bo"))
        var patch = ContactPatch()
        patch[.name] = "Ann Jones"
        try mirror.stageEdit(patch, to: "c1", now: 200)

        // Intercom changed the name too (a conflict for the flush) and the phone and plan.
        _ = try mirror.upsertPage(
            #"{"type":"list","data":[\#(Self.contactJSON("c1", name: "Annie Smith", phone: "+15550009", updatedAt: 300, plan: "team"))]}"#,
            fetchedAt: 300)
        let stored = try #require(try mirror.contact(id: "c1"))
        #expect(stored.contact.name == "Ann Jones", "the edit stays on top")
        #expect(stored.contact.phone == "+15550009" && stored.contact.customAttributes["plan"] == "team")
        #expect(stored.contact.updatedAt == 300)
        #expect(try Self.body(mirror, "c1")["name"]?.string == "Ann Jones")
        let edits = try mirror.pendingEdits(of: "c1")
        #expect(edits == [.init(field: .name, base: "Ann Smith", mine: "Ann Jones", server: "Annie Smith")])
        #expect(try mirror.contact(id: "c2")?.contact.name == "Bo")
    }

    @Test func anEditOfAContactNotPushedYetGoesIntoItsCreate() async throws {
        let mirror = try ContactMirror.inMemory()
        let staged = try mirror.stageContact(ContactDraft(email: "new@example.com", name: "New"), now: 100)
        var patch = ContactPatch()
        patch[.name] = "Newer"
        patch[.phone] = "+15550003"
        let edit = try mirror.stageEdit(patch, to: staged.localID, now: 110)
        #expect(edit.foldedInto == staged.seq && edit.seq == nil)
        let entries = try mirror.outboxEntries()
        #expect(entries.count == 1 && entries[0].kind == .createContact)
        let request = try JSONValue(jsonText: entries[0].payload)
        #expect(request["name"]?.string == "Newer" && request["phone"]?.string == "+15550003")
        #expect(try mirror.contact(id: staged.localID)?.contact.name == "Newer")
    }

    @Test func anInvalidEditIsRefusedAndWritesNothing() async throws {
        let mirror = try Self.mirror(with: Self.contactJSON("c1", name: "Ann"))
        var patch = ContactPatch()
        patch[.name] = "Fine"
        patch[.phone] = "5550001"
        patch[.email] = "not-an-email"
        patch[.role] = "admin"
        let error = try #require(throws: DraftError.self) { try mirror.stageEdit(patch, to: "c1", now: 200) }
        #expect(Set(error.problems.map(\.field)) == ["phone", "email", "role"])
        #expect(try mirror.contact(id: "c1")?.contact.name == "Ann")
        #expect(try mirror.outboxEntries().isEmpty)
        #expect(throws: DraftError.self) { try mirror.stageEdit(ContactPatch(), to: "c1", now: 200) }
        #expect(throws: OutboxError.self) { try mirror.stageEdit(ContactPatch([.name: "X"]), to: "nobody", now: 200) }
    }

    /// A custom attribute the contact did not have, set and then unset, is gone again: not
    /// left as null.
    @Test func anAttributeAddedThenRemovedLeavesNoTrace() async throws {
        let mirror = try Self.mirror(with: Self.contactJSON("c1", name: "Ann"))
        try mirror.stageEdit(ContactPatch([.customAttribute("fresh"): "x"]), to: "c1", now: 1)
        #expect(try mirror.contact(id: "c1")?.contact.customAttributes["fresh"] == "x")
        let back = try mirror.stageEdit(ContactPatch([.customAttribute("fresh"): .null]), to: "c1", now: 2)
        #expect(back.seq == nil && back.pendingFields.isEmpty)
        let attributes = try #require(try mirror.contact(id: "c1")?.contact.customAttributes)
        #expect(attributes["fresh"] == nil && attributes["plan"] == "pro", "\(attributes)")
        #expect(try Self.body(mirror, "c1")["custom_attributes"]?["fresh"] == nil)
    }

    /// An email another contact of the mirror has is refused at once, as Intercom would refuse
    /// it at the flush; the contact's own email, in another case, is not.
    @Test func anEmailAnotherContactHasIsRefused() async throws {
        let mirror = try Self.mirror(with: Self.contactJSON("c1", name: "Ann"), Self.contactJSON("c2", name: "Bo"))
        let error = try #require(throws: OutboxError.self) {
            try mirror.stageEdit(ContactPatch([.email: "C2@example.com"]), to: "c1", now: 1)
        }
        #expect(error.kind == .emailExists && error.description.contains("c2"))
        #expect(try mirror.outboxEntries().isEmpty)
        let own = try mirror.stageEdit(ContactPatch([.email: "C1@Example.com"]), to: "c1", now: 2)
        #expect(own.pendingFields == [.email])
    }
}
