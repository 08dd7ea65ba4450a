import CLISupport
import Foundation
import GRDB
import Testing

@testable import IntercomSync

@Suite struct ContactImportTests {
    struct Outcome {
        var summary: ContactImport.Summary
        var rejections: [ContactImport.Rejection]
    }

    static func importFixture(
        _ name: String, into mirror: ContactMirror, options: ContactImport.Options = .init()
    ) throws -> Outcome {
        let bytes = Array(try Data(contentsOf: Fixtures.root.appendingPathComponent("csv/\(name)")))
        return try importBytes(bytes, into: mirror, options: options)
    }

    static func importBytes(_ bytes: [UInt8], into mirror: ContactMirror, options: ContactImport.Options = .init()) throws
        -> Outcome
    {
        var reader = CSVReader(bytes: bytes)
        var rejections: [ContactImport.Rejection] = []
        let summary = try ContactImport(mirror: mirror, options: options).run(&reader, now: 1_767_225_600) { rejection, _ in
            rejections.append(rejection)
        }
        return Outcome(summary: summary, rejections: rejections)
    }

    /// Contacts, pending contacts, and pending creates: entries, and imported contacts waiting for theirs.
    static func counts(_ mirror: ContactMirror) throws -> (contacts: Int, pending: Int, creates: Int) {
        try mirror.writer.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT count(*) FROM contacts")!,
                try Int.fetchOne(db, sql: "SELECT count(*) FROM contacts WHERE state = 'pending'")!,
                try Int.fetchOne(db, sql: "SELECT count(*) FROM outbox WHERE kind = 'create_contact' AND state = 'pending'")!
                    + ContactMirror.importedCreatesWaiting(in: db)
            )
        }
    }

    static func contact(email: String, in mirror: ContactMirror) throws -> Contact? {
        var query = ContactQuery()
        query.email = email
        return try mirror.contacts(matching: query).contacts.first?.contact
    }

    /// The CSV export imports back as it was, whatever the attributes' types: the
    /// `custom_attributes` column's JSON object is read with its types, and the export's ids,
    /// times and state are left to the new mirror, with or without `--custom-attributes`.
    @Test func anExportWithEveryAttributeTypeImportsBack() throws {
        let source = try ContactMirror.inMemory()
        let attributes: [String: JSONValue] = [
            "plan": .string("pro, \"gold\""), "seats": .int(12), "ratio": .double(0.75), "vip": .bool(true),
            "trial_ends_at": .int(1_767_225_600), "note": .string("two\nlines"), "formula": .string("=1+1"),
            "city": .string("Zürich"),
        ]
        _ = try source.stageContact(
            ContactDraft(
                role: .lead, email: "ada@example.com", name: "Ada", phone: "+44 20 7946 0958",
                externalID: "crm-1", customAttributes: attributes), now: 1_767_225_600)
        _ = try source.stageContact(ContactDraft(email: "bob@example.com", name: "-Bob"), now: 1_767_225_600)
        let rows = try source.contacts(matching: ContactQuery()).contacts
        let csv = ([ContactRenderer.csvColumns.joined(separator: ",")] + rows.map(ContactRenderer.csvRow))
            .joined(separator: "\r\n")
        for customAttributes in [false, true] {
            let copy = try ContactMirror.inMemory()
            var options = ContactImport.Options()
            options.customAttributes = customAttributes
            let outcome = try Self.importBytes(Array(csv.utf8), into: copy, options: options)
            #expect(outcome.summary.imported == 2 && outcome.summary.rejected == 0, "\(outcome.rejections)")
            #expect(outcome.summary.ignoredColumns == [], "every column of the export is understood")
            for row in rows {
                let original = row.contact
                let email = try #require(original.email)
                let copied = try #require(try Self.contact(email: email, in: copy))
                #expect(copied.customAttributes == original.customAttributes, "--custom-attributes \(customAttributes)")
                #expect(copied.name == original.name && copied.phone == original.phone && copied.role == original.role)
                #expect(copied.externalID == original.externalID)
            }
        }
    }

    /// Beside the export's map, a column named for one attribute wins where it has a value; a
    /// map that is not a JSON object rejects its row, naming the column.
    @Test func theAttributeMapMeetsNamedColumnsAndBadJSON() throws {
        let mirror = try ContactMirror.inMemory()
        let csv = """
            email,custom_attributes,plan
            a@example.com,"{""plan"":""pro"",""seats"":3}",gold
            b@example.com,"{""plan"":""pro""}",
            c@example.com,"{""plan"":",
            d@example.com,[1],

            """
        var options = ContactImport.Options()
        options.customAttributes = true
        let outcome = try Self.importBytes(Array(csv.utf8), into: mirror, options: options)
        #expect(outcome.summary.imported == 2 && outcome.summary.rejected == 2)
        #expect(try Self.contact(email: "a@example.com", in: mirror)?.customAttributes == ["plan": "gold", "seats": 3])
        #expect(try Self.contact(email: "b@example.com", in: mirror)?.customAttributes == ["plan": "pro"])
        #expect(outcome.rejections.map(\.line) == [4, 5])
        for rejection in outcome.rejections {
            #expect(rejection.reason.hasPrefix("custom_attributes: "), "\(rejection.reason)")
        }
    }

    @Test func exportWithBOMAndCRLF() throws {
        let mirror = try ContactMirror.inMemory()
        let outcome = try Self.importFixture("export-bom-crlf.csv", into: mirror)
        #expect(outcome.summary.read == 3 && outcome.summary.imported == 3 && outcome.summary.rejected == 0)
        #expect(outcome.summary.header == ["Email", "Name", "Phone", "Role"])
        let bjorn = try #require(try Self.contact(email: "bjorn@example.se", in: mirror))
        #expect(bjorn.name == "Björn Ek" && bjorn.role == .lead && bjorn.phone == "+46 70 123 45 67")
        #expect(try Self.contact(email: "chloe@example.fr", in: mirror)?.phone == nil)
        let counts = try Self.counts(mirror)
        #expect(counts == (3, 3, 3))
        // Imported contacts are found by full-text search like any other.
        var search = ContactQuery()
        search.search = "bjorn"
        #expect(try mirror.contacts(matching: search).contacts.map(\.contact.email) == ["bjorn@example.se"])
    }

    @Test func multilineNotesKeepPhysicalLineNumbers() throws {
        let mirror = try ContactMirror.inMemory()
        var options = ContactImport.Options()
        options.customAttributes = true
        let outcome = try Self.importFixture("multiline-notes.csv", into: mirror, options: options)
        #expect(outcome.summary.read == 4 && outcome.summary.imported == 3 && outcome.summary.rejected == 1)
        #expect(outcome.rejections.map(\.line) == [8])
        #expect(outcome.rejections[0].category == "invalid email")
        #expect(outcome.rejections[0].reason.contains("gil@example"))
        let eve = try #require(try Self.contact(email: "eve@example.com", in: mirror))
        #expect(eve.customAttributes["notes"] == .string("Said \"call me Evie\"\nand then\nhung up"))

        let plain = try Self.importFixture("multiline-notes.csv", into: try ContactMirror.inMemory())
        #expect(plain.summary.ignoredColumns == ["notes"])
    }

    @Test func quotedCommasAndADuplicateLaterInTheFile() throws {
        let mirror = try ContactMirror.inMemory()
        let outcome = try Self.importFixture("quoted-commas.csv", into: mirror)
        #expect(outcome.summary.read == 4 && outcome.summary.imported == 3 && outcome.summary.duplicates == 1)
        #expect(outcome.summary.duplicateSamples.map(\.line) == [5])
        let ana = try #require(try Self.contact(email: "ana@example.com", in: mirror))
        #expect(ana.name == "Lopez, Ana")
        #expect(outcome.summary.duplicateSamples[0].existingID == ana.id)
        #expect(try Self.contact(email: "john@example.com", in: mirror)?.name == "Smith, \"Jr.\", John")
        #expect(try Self.contact(email: "jose@example.com", in: mirror)?.phone == "+1 (415) 555-0101")
    }

    @Test func oddHeaderNamesAreRecognised() throws {
        let mirror = try ContactMirror.inMemory()
        let outcome = try Self.importFixture("odd-header.csv", into: mirror)
        #expect(outcome.summary.read == 3 && outcome.summary.imported == 2 && outcome.summary.rejected == 1)
        #expect(outcome.summary.ignoredColumns == ["Company"])
        let hana = try #require(try Self.contact(email: "hana@example.jp", in: mirror))
        #expect(hana.name == "Hana Sato" && hana.role == .lead && hana.externalID == "crm-1001")
        #expect(hana.avatarURL == "https://example.jp/hana.png" && hana.phone == "+81 90 1234 5678")
        #expect(try Self.contact(email: "ivan@example.ru", in: mirror)?.role == .user)
        let jo = try #require(outcome.rejections.first)
        #expect(jo.line == 4)
        for field in ["phone", "avatar", "role"] { #expect(jo.reason.contains("\(field):"), "\(jo.reason)") }
        #expect(jo.fields?.first == "jo@example.com")
    }

    @Test func brokenFilesRejectTheirBadRowsAndKeepTheGoodOnes() throws {
        let expectations: [(file: String, imported: Int, line: Int, reason: String, category: String)] = [
            ("unterminated-quote.csv", 2, 4, "the quote opened on line 4 is never closed", "malformed row"),
            ("short-row.csv", 2, 3, "2 fields where the header has 4", "malformed row"),
            ("invalid-utf8.csv", 2, 3, "field 2 is not valid UTF-8", "not UTF-8"),
        ]
        for expected in expectations {
            let mirror = try ContactMirror.inMemory()
            let outcome = try Self.importFixture(expected.file, into: mirror)
            #expect(outcome.summary.read == 3, "\(expected.file)")
            #expect(outcome.summary.imported == expected.imported, "\(expected.file)")
            #expect(outcome.summary.rejectedByCategory == [expected.category: 1], "\(expected.file)")
            #expect(outcome.rejections.map(\.line) == [expected.line], "\(expected.file)")
            #expect(outcome.rejections.first?.reason == expected.reason, "\(expected.file)")
            #expect(try Self.counts(mirror).pending == expected.imported)
        }
    }

    @Test func filesThatCannotBeImportedAtAllWriteNothing() throws {
        let mirror = try ContactMirror.inMemory()
        #expect(throws: ImportError(.emptyFile, "the file is empty: a CSV import needs a header row, then one row a contact")) {
            try Self.importFixture("empty.csv", into: mirror)
        }
        do {
            _ = try Self.importFixture("no-email-column.csv", into: mirror)
            Issue.record("a file without an email column was imported")
        } catch let error as ImportError {
            #expect(error.kind == .noEmailColumn)
            #expect(error.description.contains("\"name\", \"phone\""))
        }
        let headerOnly = try Self.importFixture("header-only.csv", into: mirror)
        #expect(headerOnly.summary.read == 0 && headerOnly.summary.imported == 0)
        #expect(try Self.counts(mirror) == (0, 0, 0))
    }

    /// An import can be run again: the same file twice adds nothing the second time.
    @Test func importingTwiceAddsNothing() throws {
        let mirror = try ContactMirror.inMemory()
        let first = try Self.importFixture("quoted-commas.csv", into: mirror)
        let before = try Self.counts(mirror)
        let second = try Self.importFixture("quoted-commas.csv", into: mirror)
        #expect(second.summary.imported == 0)
        #expect(second.summary.duplicates == first.summary.imported + first.summary.duplicates)
        #expect(try Self.counts(mirror) == before)
    }

    /// An import that dies part-way (here: the file becomes unreadable after some rows) keeps the
    /// batches it committed; running it again finishes it with the same result as one clean run.
    /// Both ways: rows indexed as written, and a bulk load (indexes dropped, duplicates found
    /// through `EmailRows`), whose rerun must find the rows the killed run committed.
    @Test(arguments: [false, true])
    func aKilledImportIsFinishedByRunningItAgain(deferIndexing: Bool) throws {
        let text = "email,name\n" + (0..<1_000).map { "p\($0)@example.com,Person \($0)" }.joined(separator: "\n")
        let bytes = Array(text.utf8)
        var options = ContactImport.Options()
        options.batchSize = 100
        options.deferIndexing = deferIndexing
        let mirror = try ContactMirror.inMemory()
        var offset = 0
        var failing = CSVReader(chunkSize: 512) { buffer in
            struct Died: Error {}
            if offset > bytes.count / 2 { throw Died() }
            let count = min(buffer.count, bytes.count - offset)
            for index in 0..<count { buffer[index] = bytes[offset + index] }
            offset += count
            return count
        }
        #expect(throws: (any Error).self) {
            _ = try ContactImport(mirror: mirror, options: options).run(&failing, now: 1)
        }
        let partial = try Self.counts(mirror)
        #expect(partial.contacts > 0 && partial.contacts < 1_000 && partial.contacts % 100 == 0)
        let resumed = try Self.importBytes(bytes, into: mirror, options: options)
        #expect(resumed.summary.duplicates == partial.contacts)
        #expect(resumed.summary.imported == 1_000 - partial.contacts)
        #expect(try Self.counts(mirror) == (1_000, 1_000, 1_000))
        try ImportedCreatesTests.queueAll(mirror)
        let orphans = try mirror.writer.read { db in
            try Int.fetchOne(
                db,
                sql: """
                    SELECT count(*) FROM contacts c WHERE NOT EXISTS (
                        SELECT 1 FROM outbox o WHERE o.contact_id = c.id AND o.kind = 'create_contact')
                    """)!
        }
        #expect(orphans == 0, "every imported contact has its create entry")
        try BulkLoadTests.expectExact(mirror)
    }

    /// A dry run counts duplicates as the import finds them: ASCII letters folded, other
    /// letters compared as they are (SQLite's NOCASE).
    @Test func aDryRunCountsWhatTheImportDoes() throws {
        let csv = "email\nann@example.com\nANN@Example.COM\nbo@example.com\nbo@example.com\n"
        let bytes = Array(csv.utf8)
        var options = ContactImport.Options()
        options.dryRun = true
        let dry = try Self.importBytes(bytes, into: try ContactMirror.inMemory(), options: options).summary
        let real = try Self.importBytes(bytes, into: try ContactMirror.inMemory()).summary
        #expect(dry.imported == real.imported && dry.duplicates == real.duplicates)
        #expect(real.imported == 2 && real.duplicates == 2)
        // Unicode letters are not folded by NOCASE: the import keeps both, and so does the dry run.
        #expect(EmailRows.hash64("zoë@example.com") != EmailRows.hash64("ZOË@example.com"))
        #expect(EmailRows.hash64("zoë@example.com") == EmailRows.hash64("ZOë@EXAMPLE.com"))
    }

    /// An import's transactions skip the table's CHECKs (its rows are checked before); the
    /// writes after it are checked again.
    @Test func theChecksAreBackAfterAnImport() throws {
        let mirror = try ContactMirror.inMemory()
        _ = try Self.importBytes(Array("email\nann@example.com\n".utf8), into: mirror)
        #expect(throws: MirrorError.self) {
            try mirror.writer.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO contacts (id, role, created_at, updated_at, body) VALUES ('x', 'admin', 1, 1, '{}')
                        """)
            }
        }
        try BulkLoadTests.expectExact(mirror)
    }

    @Test func dryRunCountsButWritesNothing() throws {
        let mirror = try ContactMirror.inMemory()
        _ = try mirror.stageContact(ContactDraft(email: "jose@example.com"), now: 1)
        var options = ContactImport.Options()
        options.dryRun = true
        let outcome = try Self.importFixture("quoted-commas.csv", into: mirror, options: options)
        #expect(outcome.summary.imported == 2 && outcome.summary.duplicates == 2)
        #expect(try Self.counts(mirror) == (1, 1, 1))
    }

    @Test func rowsAreValidatedByTheSameRulesAsContactsCreate() throws {
        let header = try CSVHeaderMap(header: ["email", "phone", "avatar", "role", "external_id"])
        let cases: [[String]] = [
            ["no-at.example.com", "", "", "", ""], ["a@b.io", "44 20", "", "", ""], ["a@b.io", "", "ftp://x.io/a", "", ""],
            ["a@b.io", "", "", "", String(repeating: "x", count: 256)], ["a b@c.io", "+1", "", "", ""],
        ]
        for fields in cases {
            guard case .failure(let error) = ContactImport.draft(from: fields, map: header, defaultRole: .user) else {
                Issue.record("\(fields) was accepted")
                continue
            }
            let draft = ContactDraft(
                email: fields[0], phone: fields[1].isEmpty ? nil : fields[1], avatar: fields[2].isEmpty ? nil : fields[2],
                externalID: fields[4].isEmpty ? nil : fields[4])
            #expect(error.problems == draft.problems, "\(fields)")
        }
        let good = ContactImport.draft(
            from: [" ann@example.com ", "+44 20 7946 0958", "https://x.io/a.png", "Lead", "crm-1"], map: header,
            defaultRole: .user)
        #expect(
            try good.get()
                == ContactDraft(
                    role: .lead, email: "ann@example.com", phone: "+44 20 7946 0958", avatar: "https://x.io/a.png",
                    externalID: "crm-1"))
    }
}

@Suite struct NationalPhoneTests {
    @Test func nationalNumbersBecomeInternational() throws {
        let us = try #require(NationalPhone("+1"))
        #expect(us.international("(555) 123-4567") == "+15551234567")
        #expect(us.international("1-555-123-4567") == "+15551234567", "the NANP trunk 1 goes")
        #expect(us.international("555.123.4567") == "+15551234567")
        let uk = try #require(NationalPhone("44"))
        #expect(uk.international("020 7946 0958") == "+442079460958", "the trunk 0 goes")
        #expect(uk.international("0044 20 7946 0958") == "+442079460958", "00 is an international prefix")
        let italy = try #require(NationalPhone("+39"))
        #expect(italy.international("06 6982 1234") == "+390669821234", "Italy dials its 0")
    }

    @Test func whatItCannotReadIsLeftForThePhoneCheck() throws {
        let us = try #require(NationalPhone("+1"))
        #expect(us.international("+44 20 7946 0958") == nil, "already international")
        #expect(us.international("call me") == nil)
        #expect(us.international("555-1234 ext. 2") == nil)
        #expect(us.international("()") == nil)
        for code in ["", "+", "0", "044", "+1234", "one"] { #expect(NationalPhone(code) == nil, "\(code)") }
    }

    @Test func aCRMExportKeepsEveryContactWithTheCountryAndTheDropOption() throws {
        let plain = try ContactImportTests.importFixture("hubspot-national-phones.csv", into: try .inMemory())
        #expect(plain.summary.imported == 1, "only the international phone passes by default")
        #expect(plain.summary.rejectedByCategory == ["invalid phone": 3])

        var options = ContactImport.Options()
        options.phoneCountry = NationalPhone("+1")
        options.dropInvalidPhones = true
        let mirror = try ContactMirror.inMemory()
        let fixed = try ContactImportTests.importFixture("hubspot-national-phones.csv", into: mirror, options: options)
        #expect(fixed.summary.imported == 4)
        #expect(fixed.summary.rejected == 0)
        #expect(fixed.summary.phonesRewritten == 2)
        #expect(fixed.summary.phonesDropped == 1)
        #expect(fixed.rejections.count == 1)
        let dropped = try #require(fixed.rejections.first)
        #expect(dropped.line == 5 && dropped.contactImported && dropped.category == "phone dropped")
        #expect(dropped.reason.contains("ext. 204"))
        let phones = try mirror.writer.read { db in
            try [String: String?](
                uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT email, phone FROM contacts").map {
                    ($0["email"] as String, $0["phone"] as String?)
                })
        }
        #expect(phones["maria.garcia@example.com"] == "+15551234567")
        #expect(phones["tom.baker@example.co.uk"] == "+12079460958", "one country for the whole file, as asked")
        #expect(phones["lena.vogel@example.de"] == "+49 30 901820", "an international phone is kept as written")
        #expect(phones["sam.okafor@example.com"] == .some(nil), "kept, without the phone")
    }
}
