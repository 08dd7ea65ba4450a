import Foundation
import Testing

@testable import IntercomSync

@Suite struct ContactDecodingTests {
    @Test func decodesIntercom216Example() throws {
        let contact = try Fixtures.contact("contacts/get-contact-2.16.json")
        #expect(contact.id == "6762f0d01bb69f9f2193bb7d")
        #expect(contact.role == .user)
        #expect(contact.email == "joe@bloggs.com")
        #expect(contact.externalID == "70")
        #expect(contact.avatarURL == nil)
        #expect(contact.ownerID == nil)
        #expect(contact.createdAt == 1_734_537_424)
        #expect(contact.customAttributes.isEmpty)
    }

    @Test func avatarAsStringAndOwnerAsIntegerFromOlderVersions() throws {
        let contact = try Fixtures.contact("contacts/legacy-2.15-avatar-string-owner-int.json")
        #expect(contact.avatarURL == "https://static.intercomassets.com/avatars/1/square_128/avatar.png")
        #expect(contact.ownerID == "991267459")
        #expect(contact.externalID == "25")
        #expect(contact.name == "Siobhán O'Brien")
        #expect(contact.unsubscribedFromEmails)
        #expect(contact.customAttributes["seats"] == .int(12))
        #expect(contact.customAttributes["vip"] == .bool(true))
        #expect(contact.customAttributes["ltv"] == .double(1234.5))
    }

    @Test func avatarAsObjectAndOwnerAsString() throws {
        let contact = try Fixtures.contact("contacts/avatar-object-owner-string.json")
        #expect(contact.avatarURL == "https://example.com/zoe.png")
        #expect(contact.ownerID == "991267459")
        #expect(contact.role == .lead)
        #expect(contact.customAttributes["notes"] == .string("Line one\nLine \"two\""))
    }

    @Test func missingOptionalFieldsAndNulls() throws {
        let minimal = try Fixtures.contact("contacts/minimal-lead.json")
        #expect(minimal.email == nil && minimal.name == nil && minimal.phone == nil && minimal.externalID == nil)
        #expect(minimal.customAttributes.isEmpty)
        let nullImage = try Fixtures.contact("contacts/avatar-null-image.json")
        #expect(nullImage.avatarURL == nil)
        #expect(nullImage.customAttributes.isEmpty)
    }

    @Test func customObjectAssociationsKeptAsJSON() throws {
        let contact = try Fixtures.contact("contacts/update-contact-custom-object-2.16.json")
        guard case .object(let order)? = contact.customAttributes["order"] else {
            Issue.record("custom object association not decoded as an object")
            return
        }
        #expect(order["type"] == .string("Order.list"))
    }

    @Test(arguments: [
        ("malformed/contact-missing-id.json", "id"),
        ("malformed/contact-updated-at-string.json", "updated_at"),
        ("malformed/contact-unknown-role.json", "role"),
    ])
    func malformedContactsAreRejected(fixture: String, field: String) throws {
        #expect(throws: DecodingError.self) { try Fixtures.contact(fixture) }
        do {
            _ = try Fixtures.contact(fixture)
        } catch {
            #expect(ContactMirror.describe(error).contains(field))
        }
    }

    /// The mirror extracts fields in SQL for speed; it must agree with the Swift decoder.
    @Test(arguments: [
        "contacts/get-contact-2.16.json", "contacts/legacy-2.15-avatar-string-owner-int.json",
        "contacts/avatar-object-owner-string.json", "contacts/minimal-lead.json", "contacts/avatar-null-image.json",
        "contacts/update-contact-custom-object-2.16.json", "contacts/create-contact-2.16.json",
    ])
    func mirrorStoresWhatTheDecoderReads(fixture: String) throws {
        let decoded = try Fixtures.contact(fixture)
        let mirror = try ContactMirror.inMemory()
        try mirror.writer.write { db in
            try ContactMirror.upsertContact(try Fixtures.text(fixture), fetchedAt: 100, in: db)
        }
        let stored = try #require(try mirror.contact(id: decoded.id))
        var expected = decoded
        expected.workspaceID = nil
        expected.signedUpAt = nil
        expected.lastSeenAt = nil
        expected.unsubscribedFromEmails = false
        #expect(stored.contact == expected)
        #expect(stored.state == .synced)
        let body = try #require(stored.body)
        #expect(try JSONDecoder().decode(Contact.self, from: Data(body.utf8)) == decoded)
    }
}
