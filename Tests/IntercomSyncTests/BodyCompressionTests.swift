import Foundation
import GRDB
import SyntheticData
import Testing

@testable import IntercomSync

/// Bodies are stored compressed with a dictionary trained from the workspace's own contacts,
/// and read back as the exact bytes Intercom sent.
@Suite struct BodyCompressionTests {
    static let singleContactFixtures = [
        "contacts/get-contact-2.16.json", "contacts/create-contact-2.16.json",
        "contacts/legacy-2.15-avatar-string-owner-int.json", "contacts/avatar-null-image.json",
        "contacts/avatar-object-owner-string.json", "contacts/minimal-lead.json",
        "contacts/update-contact-custom-object-2.16.json",
    ]

    /// The text of each contact of a page as the mirror stores it: the bytes of its object.
    static func bodies(ofPage page: String) throws -> [String: String] {
        let scanned = try ScannedPage(page)
        return Dictionary(uniqueKeysWithValues: scanned.contacts.map { ($0.id ?? "", $0.body) })
    }

    /// Each fixture in a mirror of its own (some share an id), in memory and in a file (whose
    /// queries go through the reader's own connection).
    @Test(arguments: [false, true])
    func everyFixtureReadsBackByteForByte(inFile: Bool) throws {
        let folder = try TemporaryDirectory()
        for (index, name) in (Self.singleContactFixtures + ["contacts/list-page-1-of-3.json"]).enumerated() {
            let mirror =
                inFile ? try ContactMirror.open(at: folder.path("\(index).sqlite"), mode: .createIfMissing) : try .inMemory()
            let text = try Fixtures.text(name).trimmingCharacters(in: .whitespacesAndNewlines)
            var expected: [String: String] = [:]
            if name.contains("list-page") {
                _ = try mirror.upsertPage(text, fetchedAt: 2)
                expected = try Self.bodies(ofPage: text)
            } else {
                let id = try mirror.writer.write { db in try ContactMirror.storeFetched(text, etag: nil, fetchedAt: 1, in: db) }
                expected[id] = text
            }
            for (id, text) in expected {
                #expect(try mirror.contact(id: id)?.body == text, "\(name): \(id)")
            }
            let texts = try mirror.count("SELECT count(*) FROM contacts WHERE typeof(body) = 'text'")
            #expect(texts == 0, "\(name): every body is stored compressed")
        }
    }

    /// 2,000 generated contacts train the first dictionary (the 1,050 compressed before it are
    /// compressed again with it); a retrain on bodies of another shape adds a second; bodies of
    /// both, and those of the first written before the second, read back byte for byte.
    @Test func generatedBodiesRoundTripAcrossARetrain() async throws {
        // Seconds of writing, kept off the cooperative pool that other suites' clients need.
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            DispatchQueue.global().async { continuation.resume(with: Result { try Self.roundTripAcrossARetrain() }) }
        }
    }

    static func roundTripAcrossARetrain() throws {
        let folder = try TemporaryDirectory()
        let mirror = try ContactMirror.open(at: folder.path("m.sqlite"), mode: .createIfMissing)
        let generator = ContactGenerator(seed: 11)
        func page(_ range: Range<Int>, reshaped: Bool = false) -> (String, [String: String]) {
            let contacts = generator.contacts(range).map { contact -> SyntheticContact in
                var copy = contact
                if reshaped {
                    copy.customAttributes = [
                        ("account_manager", .string("Manager \(contact.index % 97)")),
                        ("lifetime_value_eur", .int(contact.index * 37)), ("beta_features", .bool(true)),
                        ("notes", .string("Prefers a call in the morning; asked about invoices in \(contact.city).")),
                    ]
                }
                return copy
            }
            let text = IntercomPage.list(contacts, page: 1, perPage: 150, totalCount: contacts.count, nextCursor: nil)
            return (text, Dictionary(uniqueKeysWithValues: contacts.map { ($0.id, $0.intercomJSON()) }))
        }
        var expected: [String: String] = [:]
        for start in stride(from: 0, to: 2_000, by: 150) {
            let (text, bodies) = page(start..<min(start + 150, 2_000))
            _ = try mirror.upsertPage(text, fetchedAt: 10)
            expected.merge(bodies) { $1 }
        }
        #expect(try mirror.count("SELECT count(*) FROM body_dictionaries") == 1)
        #expect(try mirror.count("SELECT count(*) FROM contacts WHERE substr(body, 1, 1) = x'01'") == 2_000)

        let (reshaped, reshapedBodies) = page(2_000..<3_500, reshaped: true)
        _ = try mirror.upsertPages([reshaped], fetchedAt: 20)
        expected.merge(reshapedBodies) { $1 }
        try mirror.writer.write { db in _ = try #require(try BodyDictionaries.train(in: db, now: 30)) }
        let (later, laterBodies) = page(3_500..<3_800, reshaped: true)
        _ = try mirror.upsertPage(later, fetchedAt: 40)
        expected.merge(laterBodies) { $1 }

        #expect(try mirror.count("SELECT count(*) FROM body_dictionaries") == 2)
        #expect(try mirror.count("SELECT count(*) FROM contacts WHERE substr(body, 1, 1) = x'02'") == 300)
        for (id, text) in expected {
            #expect(try mirror.contact(id: id)?.body == text, "\(id)")
        }
        // A read-only open reads them through connections of its own, each loading the
        // dictionaries from the file.
        try mirror.close()
        let reopened = try ContactMirror.open(at: folder.path("m.sqlite"), mode: .readOnly)
        for id in expected.keys.prefix(50) { #expect(try reopened.contact(id: id)?.body == expected[id]) }
        let raw = expected.values.reduce(0) { $0 + $1.utf8.count }
        let stored = try reopened.count("SELECT sum(length(body)) FROM contacts")
        #expect(stored * 4 < raw, "bodies take \(stored) bytes for \(raw) of JSON")
    }

    @Test func aDictionaryIsJudgedOnlyOnEnoughBodies() {
        #expect(BodyDictionaries.drifted((bodies: 20_000, ratio: 0.3), trainedRatio: 0.1))
        #expect(!BodyDictionaries.drifted((bodies: 19_999, ratio: 0.3), trainedRatio: 0.1))
        #expect(!BodyDictionaries.drifted((bodies: 50_000, ratio: 0.14), trainedRatio: 0.1))
    }

    @Test func varintsRoundTrip() {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 8)
        defer { buffer.deallocate() }
        for value: Int64 in [0, 1, 127, 128, 300, 1 << 35, .max] {
            let length = BodyCompression.writeVarint(value, to: buffer)
            let read = BodyCompression.readVarint(UnsafeRawBufferPointer(start: buffer, count: length))
            #expect(read?.value == value && read?.length == length)
            if length > 1 {
                #expect(BodyCompression.readVarint(UnsafeRawBufferPointer(start: buffer, count: length - 1)) == nil)
            }
        }
    }

    /// A body whose bytes or dictionary are gone is refused by name, not read as garbage.
    @Test func aDamagedBodyIsReportedNotMisread() throws {
        let mirror = try ContactMirror.inMemory()
        let page = PageFactory().page(0..<3)
        _ = try mirror.upsertPage(page, fetchedAt: 1)
        let ids = try Self.bodies(ofPage: page).keys.sorted()
        try mirror.writer.write { db in
            try db.execute(sql: "UPDATE contacts SET body = x'07ffff' WHERE id = ?", arguments: [ids[0]])
            try db.execute(sql: "UPDATE contacts SET body = x'00ffff' WHERE id = ?", arguments: [ids[1]])
        }
        #expect {
            _ = try mirror.contact(id: ids[0])
        } throws: { "\($0)".contains("lacks body dictionary 7") }
        #expect {
            _ = try mirror.contact(id: ids[1])
        } throws: { "\($0)".contains("body is damaged") }
        #expect(try mirror.contact(id: ids[2])?.body != nil)
    }
}
