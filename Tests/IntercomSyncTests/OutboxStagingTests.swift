import Foundation
import GRDB
import Testing

@testable import IntercomSync

/// Validation of drafts, and staging and managing the outbox without a network.
@Suite struct OutboxStagingTests {
    // MARK: Validation: each rule, failing and passing

    @Test(arguments: [
        ("", "is required"), ("ann.example.com", "has no @"), ("a@b@example.com", "more than one @"),
        ("@example.com", "nothing before the @"), ("ann@example", "needs a domain"), ("ann @example.com", "space"),
        ("ann@exa_mple.com", "invalid domain"), (".ann@example.com", "misplaced dot"), ("ann..b@example.com", "misplaced dot"),
        ("ann@example.c", "invalid domain"), ("ann@-example.com", "invalid domain"), ("ann@example..com", "needs a domain"),
        ("an\"n@example.com", "not allowed"),
    ])
    func invalidEmailsAreRefused(email: String, reason: String) {
        let problems = ContactDraft(email: email).problems
        #expect(problems.count == 1)
        #expect(problems.first?.field == "email")
        #expect(problems.first?.reason.contains(reason) == true, "\(problems)")
    }

    @Test(arguments: ["ann@example.com", "Ann.O'Neil+tag@mail.example.co.uk", "x@b.io", "ann@exämple.de"])
    func validEmailsPass(email: String) {
        #expect(ContactDraft(email: email).problems == [])
    }

    /// The byte-level fast path for plain ASCII addresses says "valid" exactly when the full
    /// rules do.
    @Test func theASCIIFastPathAgreesWithTheRules() {
        var generator = SystemRandomNumberGenerator()
        let pieces = ["a", "Z", "0", "9", ".", "..", "@", "-", "_", "+", "'", " ", "com", "io", "x-y", "1", "é", "\t", "!"]
        var valid = 0
        for _ in 0..<20_000 {
            let count = Int.random(in: 1...9, using: &generator)
            var email = (0..<count).map { _ in pieces.randomElement(using: &generator)! }.joined()
            if Bool.random(using: &generator) { email = "ann@" + email + ".com" }
            let fast = ContactDraft.isPlainValidASCIIEmail(email)
            let rules = ContactDraft.emailProblemByRules(email) == nil
            if fast { valid += 1 }
            #expect(!fast || rules, "\(email.debugDescription): the fast path accepts what the rules refuse")
            if email.utf8.allSatisfy({ $0 < 0x80 }) {
                #expect(fast == rules, "\(email.debugDescription)")
            }
        }
        #expect(valid > 500, "the sample must hold valid addresses too")
    }

    /// The byte checks for phones and avatar URLs accept only what the full rules accept, and
    /// the phone check accepts all of it.
    @Test func thePhoneAndAvatarFastPathsAgreeWithTheRules() {
        var generator = SystemRandomNumberGenerator()
        let phonePieces = ["+", "4", "0", "9", " ", ".", "-", "(", ")", "x", "٣", "+44 20", "7946", "0958", "123"]
        let urlPieces = [
            "http://", "https://", "ftp://", "a", "Z", "0", ".", "-", "_", "~", "/", ":", "8080", "?q=1", "#f", " ", "é",
            "%20", "@", "example.com", "//",
        ]
        /// `lead` half the time, then up to `count` random pieces.
        func sample(_ lead: String, _ pieces: [String], count: Int) -> String {
            (Bool.random(using: &generator) ? lead : "")
                + (0..<Int.random(in: 1...count, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }
                .joined()
        }
        var phones = 0
        var urls = 0
        for _ in 0..<20_000 {
            let phone = sample("+", phonePieces, count: 8)
            let fastPhone = ContactDraft.isPlainValidPhone(phone)
            if fastPhone { phones += 1 }
            #expect(fastPhone == (ContactDraft.phoneProblemByRules(phone) == nil), "\(phone.debugDescription)")
            let url = sample("https://example.com", urlPieces, count: 7)
            let fastURL = ContactDraft.isPlainValidHTTPURL(url)
            if fastURL { urls += 1 }
            #expect(!fastURL || ContactDraft.avatarProblemByURL(url) == nil, "\(url.debugDescription)")
        }
        #expect(phones > 300 && urls > 300, "the samples must hold valid ones too")
        #expect(ContactDraft.isPlainValidHTTPURL("https://static.example.com:8443/avatars/1.png"))
    }

    @Test func phonesMustStartWithPlusAndHoldSevenToFifteenDigits() {
        func reason(_ phone: String) -> String? { ContactDraft(email: "a@b.io", phone: phone).problems.first?.reason }
        #expect(reason("020 7946 0958")?.contains("must start with +") == true)
        #expect(reason("+44 20 7946 095x")?.contains("only digits") == true)
        #expect(reason("+123")?.contains("has 3 digits") == true)
        #expect(reason("+1234567890123456")?.contains("has 16 digits") == true)
        #expect(reason("+44 20 7946 0958") == nil)
        #expect(reason("+1 (415) 555-0100") == nil)
    }

    @Test func avatarsMustBeWebURLs() {
        func reason(_ avatar: String) -> String? { ContactDraft(email: "a@b.io", avatar: avatar).problems.first?.reason }
        #expect(reason("ftp://example.com/a.png")?.contains("not an http(s) URL") == true)
        #expect(reason("example.com/a.png")?.contains("not an http(s) URL") == true)
        #expect(reason("https://") != nil)
        #expect(reason("https://example.com/a.png") == nil)
        #expect(reason("http://cdn.example.com/a?size=64") == nil)
    }

    @Test func namesExternalIDsAndCustomAttributes() {
        let bad = ContactDraft(
            email: "a@b.io", name: "  ", externalID: String(repeating: "x", count: 256),
            customAttributes: ["plan.tier": "pro", "tags": .array(["a"]), "": 1])
        #expect(
            bad.problems.map(\.field) == [
                "name", "external_id", "custom_attributes.", "custom_attributes.plan.tier", "custom_attributes.tags",
            ])
        #expect(ContactDraft(email: "a@b.io", name: "Tab\tName").problems.first?.reason == "contains a control character")
        let good = ContactDraft(
            email: "a@b.io", name: "Zoë D'Arcy-Łukasz", externalID: "crm-42",
            customAttributes: ["plan": "pro", "seats": 3, "trial": true, "churned_at": .null])
        #expect(good.problems == [])
    }

    @Test func everyProblemIsReportedAtOnce() throws {
        let draft = ContactDraft(email: "nope", phone: "12345", avatar: "file:///a.png")
        let error = try #require(throws: DraftError.self) { try draft.validate() }
        #expect(error.problems.map(\.field) == ["email", "phone", "avatar"])
        #expect(error.description.contains("nothing was staged"))
    }

    @Test func messageRules() {
        func fields(_ draft: MessageDraft) -> [String] { draft.problems.map(\.field) }
        #expect(fields(MessageDraft(kind: .email, body: "Hi", to: "a@b.io")) == ["subject"])
        #expect(fields(MessageDraft(kind: .email, subject: "S", body: "Hi", template: .personal, to: "a@b.io")) == [])
        #expect(fields(MessageDraft(kind: .inApp, body: " \n", to: "a@b.io")) == ["body"])
        #expect(fields(MessageDraft(kind: .inApp, subject: "S", body: "Hi", to: "a@b.io")) == ["subject"])
        #expect(fields(MessageDraft(kind: .inApp, body: "Hi", template: .plain, to: "a@b.io")) == ["template"])
        #expect(fields(MessageDraft(kind: .inApp, body: "<b>Hi</b>", to: "")) == ["to"])
        #expect(fields(MessageDraft(kind: .inApp, body: "Hi", to: "1", from: "99 1")) == ["from"])
        #expect(fields(MessageDraft(kind: .inApp, body: "<b>Hi</b>", to: "6657abc", from: "991267459")) == [])
        #expect(MessageDraft.Kind(name: "in_app") == .inApp)
        #expect(MessageDraft.Kind(name: "inapp") == .inApp)
        #expect(MessageDraft.Kind(name: "EMAIL") == .email)
        #expect(MessageDraft.Kind(name: "sms") == nil)
    }

    @Test func anEmailPayloadDefaultsToThePlainTemplate() {
        let payload = MessageDraft(kind: .email, subject: "S", body: "B", to: "x").payload
        #expect(payload["template"]?.string == "plain")
        #expect(payload["from"] == nil)
        #expect(MessageDraft(kind: .inApp, body: "B", to: "x").payload["template"] == nil)
    }

    // MARK: Staging

    @Test func aStagedContactIsQueryableAtOnceAndQueuedWithIt() throws {
        let mirror = try ContactMirror.inMemory()
        let staged = try mirror.stageContact(
            ContactDraft(role: .lead, email: "ann@example.com", name: "Ann", customAttributes: ["plan": "pro"]), now: 1_000)
        #expect(staged.localID.hasPrefix("local_"))
        let stored = try #require(try mirror.contact(id: staged.localID))
        #expect(stored.state == .pending)
        #expect(stored.contact.role == .lead)
        #expect(stored.contact.customAttributes["plan"] == "pro")
        var byEmail = ContactQuery()
        byEmail.email = "ANN@example.com"
        #expect(try mirror.contacts(matching: byEmail).contacts.map(\.id) == [staged.localID])
        var search = ContactQuery()
        search.search = "ann"
        #expect(try mirror.contacts(matching: search).contacts.count == 1)
        let entries = try mirror.outboxEntries()
        #expect(entries.count == 1)
        #expect(entries[0].kind == .createContact)
        #expect(entries[0].contactID == staged.localID)
        #expect(entries[0].state == .pending)
        #expect(try JSONValue(jsonText: entries[0].payload)["email"]?.string == "ann@example.com")
        #expect(try mirror.status().outbox.pending == 1)
    }

    @Test func invalidInputWritesNothing() throws {
        let mirror = try ContactMirror.inMemory()
        #expect(throws: DraftError.self) { try mirror.stageContact(ContactDraft(email: "bad"), now: 1) }
        #expect(throws: DraftError.self) {
            try mirror.stageMessage(MessageDraft(kind: .email, body: "x", to: "a@b.io"), now: 1)
        }
        #expect(try mirror.status().contacts.pending == 0)
        #expect(try mirror.outboxEntries().isEmpty)
    }

    /// A local write and its outbox entry commit together, or neither commits.
    @Test func theContactAndItsEntryCommitTogether() throws {
        let mirror = try ContactMirror.inMemory()
        try mirror.writer.write { db in
            try db.execute(
                sql: "CREATE TEMP TRIGGER refuse AFTER INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        }
        #expect(throws: MirrorError.self) { try mirror.stageContact(ContactDraft(email: "a@b.io"), now: 1) }
        #expect(try mirror.status().contacts.pending == 0, "no contact without its entry")
        try mirror.writer.write { db in try db.execute(sql: "DROP TRIGGER refuse") }
        _ = try mirror.stageContact(ContactDraft(email: "a@b.io"), now: 1)
        #expect(try mirror.status().contacts.pending == 1)
    }

    @Test func anEmailTheMirrorHasIsRefusedUnlessAskedFor() throws {
        let mirror = try ContactMirror.inMemory()
        let first = try mirror.stageContact(ContactDraft(email: "ann@example.com"), now: 1)
        let error = try #require(throws: OutboxError.self) {
            try mirror.stageContact(ContactDraft(email: "Ann@Example.com"), now: 2)
        }
        #expect(error.kind == .emailExists)
        #expect(error.existingContactID == first.localID)
        #expect(error.description.contains(first.localID))
        _ = try mirror.stageContact(ContactDraft(email: "Ann@Example.com"), allowingDuplicateEmail: true, now: 2)
        #expect(try mirror.outboxEntries().count == 2)
    }

    @Test func messagesResolveTheirRecipient() throws {
        let mirror = try ContactMirror.inMemory()
        _ = try mirror.upsertPage(PageFactory().page(0..<3), fetchedAt: 1)
        let synced = try #require(try mirror.contacts(matching: ContactQuery()).contacts.first)
        let byID = try mirror.stageMessage(MessageDraft(kind: .inApp, body: "Hi", to: synced.id), now: 2)
        #expect(byID.recipientID == synced.id)
        #expect(byID.waitsFor == nil)
        let email = try #require(synced.contact.email)
        let byEmail = try mirror.stageMessage(MessageDraft(kind: .inApp, body: "Hi", to: email.uppercased()), now: 2)
        #expect(byEmail.recipientID == synced.id)

        let local = try mirror.stageContact(ContactDraft(email: "new@example.com"), now: 3)
        let waiting = try mirror.stageMessage(MessageDraft(kind: .inApp, body: "Hi", to: "new@example.com"), now: 3)
        #expect(waiting.recipientID == local.localID)
        #expect(waiting.waitsFor == local.seq)

        func kind(_ to: String) -> OutboxError.Kind? {
            do {
                _ = try mirror.stageMessage(MessageDraft(kind: .inApp, body: "Hi", to: to), now: 4)
                return nil
            } catch {
                return (error as? OutboxError)?.kind
            }
        }
        #expect(kind("nobody@example.com") == .unknownRecipient)
        #expect(kind("6657ffff0000") == .unknownRecipient)
        _ = try mirror.stageContact(ContactDraft(email: "twice@example.com"), now: 5)
        _ = try mirror.stageContact(ContactDraft(email: "twice@example.com"), allowingDuplicateEmail: true, now: 5)
        #expect(kind("twice@example.com") == .ambiguousRecipient)
        try mirror.writer.write { db in try ContactMirror.tombstone(id: synced.id, at: 6, in: db) }
        #expect(kind(synced.id) == .recipientGone)
    }

    // MARK: Managing the queue

    @Test func dropRefusesToOrphanDependentsUnlessCascading() throws {
        let mirror = try ContactMirror.inMemory()
        let contact = try mirror.stageContact(ContactDraft(email: "a@b.io"), now: 1)
        let message = try mirror.stageMessage(MessageDraft(kind: .inApp, body: "Hi", to: contact.localID), now: 1)
        let error = try #require(throws: OutboxError.self) { try mirror.dropOutboxEntry(seq: contact.seq, cascade: false) }
        #expect(error.kind == .hasDependents)
        #expect(error.description.contains("#\(message.seq)"))
        #expect(try mirror.outboxEntries().count == 2, "nothing dropped")

        let dropped = try mirror.dropOutboxEntry(seq: contact.seq, cascade: true)
        #expect(dropped.seqs == [contact.seq, message.seq])
        #expect(dropped.removedContactID == contact.localID)
        #expect(try mirror.outboxEntries().isEmpty)
        #expect(try mirror.contact(id: contact.localID) == nil)
        #expect(throws: OutboxError.self) { try mirror.dropOutboxEntry(seq: contact.seq, cascade: false) }
    }

    @Test func retryPutsBackOnlyWhatMaySafelyGoAgain() throws {
        let mirror = try ContactMirror.inMemory()
        let seqs = try (0..<4).map { index in
            try mirror.stageContact(ContactDraft(email: "p\(index)@b.io"), now: 1).seq
        }
        try mirror.writer.write { db in
            for (seq, state) in zip(seqs, ["sent", "failed", "unknown", "in_flight"]) {
                try db.execute(sql: "UPDATE outbox SET state = ? WHERE seq = ?", arguments: [state, seq])
            }
        }
        #expect(throws: OutboxError.self) { try mirror.retryOutboxEntry(seq: seqs[0], now: 2) }
        #expect(throws: OutboxError.self) { try mirror.retryOutboxEntry(seq: seqs[3], now: 2) }
        #expect(throws: OutboxError.self) { try mirror.retryOutboxEntry(seq: 999, now: 2) }
        try mirror.retryOutboxEntry(seq: seqs[1], now: 2)
        #expect(try mirror.outboxEntry(seq: seqs[1])?.state == .pending)
        #expect(try mirror.retryUnknownOutboxEntries(now: 3) == [seqs[2]])
        #expect(try mirror.outboxEntries(states: [.pending]).map(\.seq) == [seqs[1], seqs[2]])
        #expect(throws: OutboxError.self) { try mirror.dropOutboxEntry(seq: seqs[3], cascade: false) }
    }

    /// A local contact's body is not stored: it is derived from its columns, as Intercom-shaped
    /// JSON that decodes to the same contact.
    @Test func aLocalContactsBodyIsDerivedFromItsColumns() throws {
        let mirror = try ContactMirror.inMemory()
        let draft = ContactDraft(
            role: .lead, email: "zoe@example.com", name: "Zoë \"Z\" O'Neil", phone: "+44 20 7946 0958",
            avatar: "https://example.com/z.png", externalID: "ext-1", customAttributes: ["plan": "pro", "seats": 3])
        let staged = try mirror.stageContact(draft, now: 1_700_000_000)
        let plain = try mirror.stageContact(ContactDraft(email: "bo@example.com"), now: 1_700_000_001)
        let stored = try mirror.writer.read { db in try String.fetchAll(db, sql: "SELECT contact_body(body) FROM contacts") }
        #expect(stored == ["", ""])
        for id in [staged.localID, plain.localID] {
            let contact = try #require(try mirror.contact(id: id))
            let body = try #require(contact.body)
            let decoded = try JSONDecoder().decode(Contact.self, from: Data(body.utf8))
            #expect(decoded == contact.contact)
            #expect(try JSONValue(jsonText: body)["type"] == "contact")
        }
        #expect(try mirror.contact(id: staged.localID)?.contact.customAttributes == ["plan": "pro", "seats": 3])
    }

    /// Local ids are UUIDs of version 7 after `local_`: distinct, led by the time in milliseconds,
    /// so ids staged one after another sort in that order.
    @Test func localIDsAreTimeOrderedUUIDs() throws {
        let pattern = try Regex("^local_[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        let before = UInt64(Date().timeIntervalSince1970 * 1000)
        let ids = (0..<2_000).map { _ in ContactMirror.newLocalID() }
        let after = UInt64(Date().timeIntervalSince1970 * 1000)
        #expect(ids.allSatisfy { (try? pattern.wholeMatch(in: $0)) != nil })
        #expect(Set(ids).count == ids.count)
        let times = ids.map { id in
            UInt64(id.dropFirst(6).replacingOccurrences(of: "-", with: "").prefix(12), radix: 16)!
        }
        #expect(times.allSatisfy { (before...after).contains($0) })
        #expect(times == times.sorted())
    }
}
