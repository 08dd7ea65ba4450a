import Foundation
import Testing

@testable import SyntheticData

@Suite struct SyntheticDataTests {
    @Test func sameSeedSameContactsInAnyOrder() {
        let generator = ContactGenerator(seed: 99)
        let forward = generator.contacts(0..<50)
        let backward = (0..<50).reversed().map(generator.contact(at:)).reversed()
        #expect(forward == Array(backward))
        #expect(ContactGenerator(seed: 100).contact(at: 3) != forward[3])
    }

    @Test func idsAndEmailsAreUnique() {
        let contacts = ContactGenerator(seed: 1).contacts(0..<5_000)
        #expect(Set(contacts.map(\.id)).count == 5_000)
        #expect(Set(contacts.map(\.email)).count == 5_000)
        #expect(contacts.allSatisfy { $0.id.count == 24 && $0.id.allSatisfy(\.isHexDigit) })
    }

    @Test func realisticSpread() {
        let contacts = ContactGenerator(seed: 1).contacts(0..<2_000)
        #expect(contacts.contains { $0.name.contains("'") })
        #expect(contacts.contains { $0.name.unicodeScalars.contains { $0.value > 127 } })
        #expect(contacts.allSatisfy { $0.phone.map { $0.hasPrefix("+") } ?? true })
        #expect(contacts.contains { $0.role == .lead } && contacts.contains { $0.role == .user })
        #expect(contacts.allSatisfy { $0.createdAt <= $0.updatedAt && $0.updatedAt <= 1_767_225_600 })
        #expect(Set(contacts.map(\.updatedAt)).count < contacts.count)  // some share an updated_at
    }

    @Test func pagesAreValidJSONInIntercomsShape() throws {
        let contacts = ContactGenerator(seed: 5).contacts(0..<30)
        let page = IntercomPage.list(contacts, page: 1, perPage: 30, totalCount: 90, nextCursor: "abc\"def")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(page.utf8)) as? [String: Any])
        #expect(object["type"] as? String == "list")
        #expect((object["data"] as? [[String: Any]])?.count == 30)
        let pages = try #require(object["pages"] as? [String: Any])
        #expect((pages["next"] as? [String: Any])?["starting_after"] as? String == "abc\"def")
        let first = try #require((object["data"] as? [[String: Any]])?.first)
        #expect(first["id"] as? String == contacts[0].id)
        #expect(first["name"] as? String == contacts[0].name)
    }

    @Test func csvQuotesWhatNeedsQuoting() {
        #expect(SyntheticContact.csvField("plain") == "plain")
        #expect(SyntheticContact.csvField("Acme, Inc.") == "\"Acme, Inc.\"")
        #expect(SyntheticContact.csvField("say \"hi\"\nbye") == "\"say \"\"hi\"\"\nbye\"")
        let row = ContactGenerator(seed: 1).contacts(0..<500).map { $0.csvRow() }.first { $0.contains("\n") }
        #expect(row != nil)
    }
}
