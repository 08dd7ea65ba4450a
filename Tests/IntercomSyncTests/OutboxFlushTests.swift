import Foundation
import GRDB
import IntercomSimulator
import Testing

@testable import IntercomSync

/// The outbox flush against the simulator over loopback (the outbox's guarantees: creates happen once, a message is sent at most once, …).
@Suite struct OutboxFlushTests {
    /// Imported contacts are pushed once each, their entries written by the flush and read a
    /// page at a time, and messages to them follow their creates.
    @Test func importedContactsArePushedOnceAcrossPages() async throws {
        let harness = try await SimulatorHarness.start(contacts: 0)
        defer { Task { await harness.stop() } }
        let mirror = harness.mirror
        var options = ContactImport.Options()
        options.batchSize = 10
        var reader = CSVReader(
            bytes: Array(("email,name\n" + (0..<45).map { "i\($0)@example.com,Imported \($0)" }.joined(separator: "\n")).utf8))
        _ = try ContactImport(mirror: mirror, options: options).run(&reader, now: harness.now)
        let messages = try (0..<9).map { index in
            try mirror.stageMessage(
                MessageDraft(kind: .inApp, body: "Hi \(index)", to: "i\(index * 5)@example.com"), now: harness.now)
        }
        #expect(messages.allSatisfy { $0.waitsFor != nil })
        #expect(try mirror.importedCreatesWaiting() == 36)

        let summary = try await harness.flush(pageSize: 4)
        #expect(summary.queued == 54)
        #expect(summary.contactsCreated == 45 && summary.messagesSent == 9)
        #expect(!summary.needsAttention)
        let counts = try await harness.emailCounts()
        #expect(counts.count == 45 && counts.values.allSatisfy { $0 == 1 })
        #expect(try await harness.sentMessages().count == 9)
        #expect(try mirror.importedCreatesWaiting() == 0)
        #expect(try mirror.outboxEntries(states: [.pending]).isEmpty)
        #expect(try await harness.flush().queued == 0)
    }

    /// A first import whose contacts all got their entries (and were pushed) before the flush
    /// leaves a range with nothing to queue; the flush goes on to the next import's range.
    @Test func aRangeWithNothingLeftToQueueDoesNotEndTheFlush() async throws {
        let harness = try await SimulatorHarness.start(contacts: 0)
        defer { Task { await harness.stop() } }
        let mirror = harness.mirror
        func importRows(_ prefix: String) throws {
            var reader = CSVReader(
                bytes: Array(("email\n" + (0..<5).map { "\(prefix)\($0)@example.com" }.joined(separator: "\n")).utf8))
            _ = try ContactImport(mirror: mirror).run(&reader, now: harness.now)
        }
        try importRows("a")
        _ = try mirror.upsertPage(PageFactory().page(0..<1), fetchedAt: 1)  // Row 6: B's rows come after.
        try await mirror.writer.write { db in
            for id in try String.fetchAll(db, sql: "SELECT id FROM contacts") {
                _ = try ContactMirror.queueImportedCreate(contactID: id, now: 1, in: db)
            }
            // As if a flush had pushed them and stopped.
            try db.execute(sql: "UPDATE outbox SET state = 'sent'; DELETE FROM contacts WHERE state = 'pending'")
        }
        try importRows("b")
        let summary = try await harness.flush(pageSize: 5)
        #expect(summary.contactsCreated == 5)
        #expect(try await harness.emailCounts().keys.sorted() == (0..<5).map { "b\($0)@example.com" })
        #expect(try mirror.importedCreatesWaiting() == 0)
    }

    @Test func createsArePushedOnceAndMessagesFollowToTheNewIDs() async throws {
        let harness = try await SimulatorHarness.start(contacts: 0)
        defer { Task { await harness.stop() } }
        let mirror = harness.mirror
        let ann = try mirror.stageContact(
            ContactDraft(email: "ann@example.com", name: "Ann O'Neil", phone: "+44 20 7946 0958"), now: harness.now)
        let bob = try mirror.stageContact(ContactDraft(role: .lead, email: "bob@example.com"), now: harness.now)
        let toAnn = try mirror.stageMessage(
            MessageDraft(kind: .email, subject: "Welcome", body: "<p>Hi Ann</p>", to: ann.localID), now: harness.now)
        let toBob = try mirror.stageMessage(MessageDraft(kind: .inApp, body: "Hi Bob", to: "BOB@example.com"), now: harness.now)
        #expect(toAnn.waitsFor == ann.seq)
        #expect(toBob.waitsFor == bob.seq)
        #expect(await harness.workspace.requestLog().isEmpty, "staging must not touch the network")

        let summary = try await harness.flush()
        #expect(summary.contactsCreated == 2)
        #expect(summary.messagesSent == 2)
        #expect(!summary.needsAttention)
        #expect(try await harness.emailCounts() == ["ann@example.com": 1, "bob@example.com": 1])

        // The local ids became Intercom ids, in the mirror and in the outbox, and still resolve.
        let annID = try #require(try harness.entry(ann.seq).remoteID)
        let bobID = try #require(try harness.entry(bob.seq).remoteID)
        #expect(try mirror.contact(id: ann.localID)?.id == annID)
        #expect(try mirror.contact(id: annID)?.state == .synced)
        #expect(try mirror.contact(id: bob.localID)?.contact.role == .lead)
        #expect(try harness.entry(toAnn.seq).contactID == annID)
        var pendingQuery = ContactQuery()
        pendingQuery.states = [.pending]
        #expect(try mirror.contacts(matching: pendingQuery).contacts.isEmpty)

        // Each message went to its contact's new id, after that contact's create.
        let messages = try await harness.sentMessages()
        #expect(messages.count == 2)
        let recipients = Set(messages.compactMap { $0["to"]?["id"]?.string })
        #expect(recipients == [annID, bobID])
        #expect(messages.contains { $0["to"]?["type"]?.string == "lead" && $0["to"]?["id"]?.string == bobID })
        #expect(messages.allSatisfy { $0["owner"]?["id"]?.string != nil })
        let log = await harness.workspace.requestLog().map { "\($0.method) \($0.path)" }
        #expect(log.firstIndex(of: "POST /contacts")! < log.firstIndex(of: "POST /messages")!)
        #expect(log.filter { $0 == "GET /me" }.count == 1)
        #expect(try mirror.syncState(.adminID) != nil)
        #expect(try harness.entry(toAnn.seq).state == .sent)
        #expect(try harness.entry(toAnn.seq).remoteID != nil)

        // A second flush has nothing to do.
        let again = try await harness.flush()
        #expect(again.queued == 0)
        #expect(try await harness.sentMessages().count == 2)
    }

    /// A create whose email Intercom already has takes that contact over: the fields it lacks
    /// are written, and a field it holds another value for is not overwritten but waits as a
    /// conflict (no base: the create had none), our value shown on top until a person chooses.
    @Test func aCreateMeetingAnExistingContactAdoptsItWritesWhatItLacksAndDisputesTheRest() async throws {
        let harness = try await SimulatorHarness.start(contacts: 0)
        defer { Task { await harness.stop() } }
        let live = try await harness.workspace.create(fieldsJSON: #"{"email": "live@example.com", "name": "Old Name"}"#)
        let archived = try await harness.workspace.create(fieldsJSON: #"{"email": "gone@example.com", "name": "Kept"}"#)
        try await harness.workspace.archive(id: archived)
        // The mirror has never seen them, so staging accepts the emails.
        let first = try harness.mirror.stageContact(
            ContactDraft(email: "Live@Example.com", name: "New Name", phone: "+15550100"), now: harness.now)
        let second = try harness.mirror.stageContact(ContactDraft(email: "gone@example.com", name: "Kept"), now: harness.now)

        let summary = try await harness.flush()
        #expect(summary.contactsAdopted == 2 && summary.conflicts == 1, "\(summary)")
        #expect(summary.contactsCreated == 0)
        #expect(try await harness.emailCounts() == ["live@example.com": 1, "gone@example.com": 1])
        #expect(try harness.entry(first.seq).remoteID == live)
        #expect(try harness.entry(second.seq).remoteID == archived)
        #expect(await harness.workspace.archivedIDs().isEmpty, "the archived contact is unarchived")
        #expect(try harness.mirror.contact(id: first.localID)?.contact.name == "New Name", "ours, on top")
        let onIntercom = try #require(try await harness.listedContacts()[live])
        #expect(onIntercom["name"]?.string == "Old Name" && onIntercom["phone"]?.string == "+15550100")
        let conflicts = try harness.mirror.editConflicts()
        #expect(
            conflicts.map(\.fields) == [
                [EditConflict.Field(field: .name, base: nil, mine: "New Name", theirs: "Old Name")]
            ] && conflicts.first?.contactID == live, "\(conflicts)")
        let log = await harness.workspace.requestLog().map { "\($0.method) \($0.path)" }
        #expect(log.contains("POST /contacts/\(archived)/unarchive"))
        #expect(log.contains("PUT /contacts/\(live)"))
        #expect(!log.contains("PUT /contacts/\(archived)"), "nothing differs: nothing is written")
    }

    @Test func lostCreateAnswersStillLeaveOneContactPerEmail() async throws {
        let harness = try await SimulatorHarness.start(contacts: 0, timeout: 1) {
            var faults = FaultPlan()
            faults.lostResponseRate = 0.5
            faults.lostResponseDelaySeconds = 2.5
            faults.routes = ["POST /contacts"]
            faults.seed = 3
            $0.faults = faults
        }
        defer { Task { await harness.stop() } }
        let emails = (1...12).map { "person\($0)@example.com" }
        var staged: [StagedContact] = []
        for email in emails {
            staged.append(try harness.mirror.stageContact(ContactDraft(email: email), now: harness.now))
        }
        var flushes = 0
        while try !harness.mirror.outboxEntries(states: [.pending]).isEmpty && flushes < 5 {
            _ = try await harness.flush()
            flushes += 1
        }
        let log = await harness.workspace.requestLog()
        #expect(log.contains { $0.lost }, "the fault must have struck")
        #expect(try await harness.emailCounts() == Dictionary(uniqueKeysWithValues: emails.map { ($0, 1) }))
        let onServer = try await harness.listedContacts()
        for contact in staged {
            let entry = try harness.entry(contact.seq)
            #expect(entry.state == .sent)
            let id = try #require(entry.remoteID)
            #expect(onServer[id] != nil)
            #expect(try harness.mirror.contact(id: contact.localID)?.id == id)
        }
    }

    @Test func aMessageWhoseAnswerIsLostEndsUnknownAndIsNotResent() async throws {
        let harness = try await SimulatorHarness.start(contacts: 1, timeout: 1) {
            var faults = FaultPlan()
            faults.lostResponseRate = 1
            faults.lostResponseDelaySeconds = 2.5
            faults.routes = ["POST /messages"]
            $0.faults = faults
        }
        defer { Task { await harness.stop() } }
        _ = try await harness.sync.run()
        let id = try #require(await harness.workspace.contactIDs().first)
        let message = try harness.mirror.stageMessage(MessageDraft(kind: .inApp, body: "Once only", to: id), now: harness.now)

        let first = try await harness.flush()
        #expect(first.unknown == 1)
        #expect(first.needsAttention)
        #expect(try harness.entry(message.seq).state == .unknown)
        #expect(try harness.entry(message.seq).lastError?.code == "timeout")
        let second = try await harness.flush()
        #expect(second.queued == 0)
        #expect(second.unknownInOutbox == 1)
        let posts = await harness.workspace.requestLog().filter { $0.method == "POST" && $0.path == "/messages" }
        #expect(posts.count == 1, "an unknown message is never sent again on its own")
        #expect(try await harness.sentMessages().count == 1)

        // Only an explicit retry sends it again.
        await harness.workspace.setFaults(FaultPlan())
        #expect(try harness.mirror.retryUnknownOutboxEntries(now: harness.now) == [message.seq])
        let retried = try await harness.flush()
        #expect(retried.messagesSent == 1, "\(retried)")
        #expect(try harness.entry(message.seq).state == .sent)
    }

    @Test func entriesLeftInFlightByADeadFlushAreSettledSafely() async throws {
        let harness = try await SimulatorHarness.start(contacts: 1)
        defer { Task { await harness.stop() } }
        _ = try await harness.sync.run()
        let id = try #require(await harness.workspace.contactIDs().first)
        let message = try harness.mirror.stageMessage(MessageDraft(kind: .inApp, body: "Maybe sent", to: id), now: harness.now)
        let create = try harness.mirror.stageContact(ContactDraft(email: "new@example.com"), now: harness.now)
        // A flush died after committing both in flight (and after Intercom made the contact).
        try await harness.mirror.writer.write { db in
            try db.execute(sql: "UPDATE outbox SET state = 'in_flight', attempts = 1")
        }
        _ = try await harness.workspace.create(fieldsJSON: #"{"email": "new@example.com"}"#)

        let summary = try await harness.flush()
        #expect(summary.interrupted == [message.seq])
        #expect(try harness.entry(message.seq).state == .unknown)
        #expect(try harness.entry(message.seq).lastError?.code == "interrupted")
        #expect(try await harness.sentMessages().isEmpty)
        #expect(summary.contactsAdopted == 1)
        #expect(try harness.entry(create.seq).state == .sent)
        #expect(try await harness.emailCounts()["new@example.com"] == 1)
    }

    @Test func permanentFailuresBlockOnlyWhatDependsOnThem() async throws {
        let harness = try await SimulatorHarness.start(contacts: 2)
        defer { Task { await harness.stop() } }
        _ = try await harness.sync.run()
        let ids = await harness.workspace.contactIDs()
        let broken = try harness.mirror.stageContact(ContactDraft(email: "broken@example.com"), now: harness.now)
        let waiting = try harness.mirror.stageMessage(
            MessageDraft(kind: .inApp, body: "Waits", to: broken.localID), now: harness.now)
        let deleted = try harness.mirror.stageMessage(
            MessageDraft(kind: .inApp, body: "To the deleted", to: ids[0]), now: harness.now)
        let fine = try harness.mirror.stageMessage(MessageDraft(kind: .inApp, body: "Fine", to: ids[1]), now: harness.now)
        // Intercom refuses the create (a payload staged by hand, which validation would stop).
        try await harness.mirror.writer.write { db in
            try db.execute(
                sql: #"UPDATE outbox SET payload = '{"email": "not an email"}' WHERE seq = ?"#, arguments: [broken.seq])
        }
        try await harness.workspace.delete(id: ids[0])

        let summary = try await harness.flush()
        #expect(summary.failed == 2)
        #expect(summary.blocked == 1)
        #expect(summary.messagesSent == 1)
        let create = try harness.entry(broken.seq)
        #expect(create.state == .failed)
        #expect(create.lastError?.status == 400)
        #expect(create.lastError?.requestID?.isEmpty == false)
        #expect(try harness.entry(waiting.seq).state == .pending)
        #expect(try harness.entry(deleted.seq).state == .failed)
        #expect(try harness.entry(deleted.seq).lastError?.code == "not_found")
        #expect(try harness.entry(fine.seq).state == .sent)
        #expect(try harness.mirror.contact(id: broken.localID)?.state == .pending, "the local contact is kept")
    }

    @Test func aRevokedTokenStopsTheFlushAndLosesNothing() async throws {
        let harness = try await SimulatorHarness.start(contacts: 1)
        defer { Task { await harness.stop() } }
        _ = try await harness.sync.run()
        let id = try #require(await harness.workspace.contactIDs().first)
        let create = try harness.mirror.stageContact(ContactDraft(email: "later@example.com"), now: harness.now)
        let message = try harness.mirror.stageMessage(MessageDraft(kind: .inApp, body: "Later", to: id), now: harness.now)
        await harness.workspace.revoke(token: harness.simulator.accessToken)

        let summary = try await harness.flush()
        #expect(summary.stoppedBy?.kind == .authentication && summary.stoppedBy?.status == 401)
        #expect(summary.sent == 0)
        // The workspace check (GET /me) met the 401 before any entry was touched.
        for seq in [create.seq, message.seq] {
            #expect(try harness.entry(seq).state == .pending)
            #expect(try harness.entry(seq).attempts == 0)
        }
        let posts = await harness.workspace.requestLog().filter { $0.path == "/messages" }
        #expect(posts.isEmpty, "nothing is sent after the 401")
    }

    @Test func anUnreachableIntercomDefersEverythingAndMarksNothingUnknown() async throws {
        let harness = try await SimulatorHarness.start(contacts: 1)
        defer { Task { await harness.stop() } }
        _ = try await harness.sync.run()
        let id = try #require(await harness.workspace.contactIDs().first)
        try harness.mirror.setSyncState(.adminID, to: "991267459")
        let create = try harness.mirror.stageContact(ContactDraft(email: "offline@example.com"), now: harness.now)
        let message = try harness.mirror.stageMessage(MessageDraft(kind: .inApp, body: "Offline", to: id), now: harness.now)
        let offline = IntercomClient(
            connection: IntercomConnection(baseURL: URL(string: "http://127.0.0.1:9")!, accessToken: "t", timeout: 1),
            retryPolicy: RetryPolicy(maximumAttempts: 2, baseDelay: 0.01, maximumDelay: 0.02))

        let summary = try await harness.flush(client: offline)
        #expect(summary.unreachable?.code == "network_unreachable")
        #expect(summary.pendingInOutbox == 2)
        #expect(!summary.needsAttention)
        for seq in [create.seq, message.seq] {
            let entry = try harness.entry(seq)
            #expect(entry.state == .pending)
            #expect(entry.attempts == 0, "the flush stopped at its first request")
        }
        let online = try await harness.flush()
        #expect(online.sent == 2)
    }

    @Test func aNewContactNotYetMessageableIsTriedAgainLater() async throws {
        let harness = try await SimulatorHarness.start(contacts: 0)
        defer { Task { await harness.stop() } }
        let transport = NotYetMessageable()
        let client = IntercomClient(
            connection: harness.client.connection, transport: transport,
            retryPolicy: RetryPolicy(maximumAttempts: 2, baseDelay: 0.01, maximumDelay: 0.02))
        let contact = try harness.mirror.stageContact(ContactDraft(email: "fresh@example.com"), now: harness.now)
        let message = try harness.mirror.stageMessage(
            MessageDraft(kind: .inApp, body: "Welcome", to: contact.localID, from: "991267459"), now: harness.now)

        let first = try await harness.flush(client: client)
        #expect(first.contactsCreated == 1)
        #expect(first.deferred == 1)
        #expect(try harness.entry(message.seq).state == .pending)
        #expect(try harness.entry(message.seq).lastError?.message.contains("yet") == true)
        let second = try await harness.flush(client: client)
        #expect(second.messagesSent == 1)
    }

    /// An admin that does not exist is no new contact waiting to become messageable: the entry
    /// fails at once, for a person to decide on, instead of waiting ten minutes.
    @Test func aMessageFromAnUnknownAdminFailsAtOnce() async throws {
        let harness = try await SimulatorHarness.start(contacts: 0)
        defer { Task { await harness.stop() } }
        let contact = try harness.mirror.stageContact(ContactDraft(email: "fresh@example.com"), now: harness.now)
        let message = try harness.mirror.stageMessage(
            MessageDraft(kind: .inApp, body: "Welcome", to: contact.localID, from: "404404"), now: harness.now)
        let summary = try await harness.flush()
        #expect(summary.contactsCreated == 1)
        #expect(summary.deferred == 0 && summary.failed == 1)
        let entry = try harness.entry(message.seq)
        #expect(entry.state == .failed)
        #expect(entry.lastError?.code == "admin_not_found", "\(String(describing: entry.lastError))")
    }

    @Test func conflictIDsAndFieldsToWrite() throws {
        let conflict = IntercomError(
            kind: .permanent, status: 409, code: "conflict",
            message: "An archived contact matching those details already exists with id=6657abc0ff", operation: "POST /contacts")
        #expect(OutboxFlush.conflictingContactID(conflict) == "6657abc0ff")
        var other = conflict
        other.code = "parameter_invalid"
        #expect(OutboxFlush.conflictingContactID(other) == nil)
        let staged = try JSONValue(
            jsonText:
                #"{"email":"A@x.io","name":"N","phone":"+15550100","avatar":"https://x.io/a.png","custom_attributes":{"plan":"pro","seats":3,"tier":"gold"}}"#
        )
        let current = try JSONValue(
            jsonText:
                #"{"email":"a@x.io","name":"N","phone":null,"avatar":{"type":"avatar","image_url":"https://x.io/a.png"},"custom_attributes":{"plan":"pro","seats":2}}"#
        )
        // What Intercom lacks is written; what it holds another value for is not overwritten.
        let (changes, disputed) = OutboxFlush.fieldsToWrite(staged, over: current)
        #expect(changes == ["phone": "+15550100", "custom_attributes": .object(["tier": "gold"])])
        #expect(disputed == [ContactMirror.FieldEdit(field: .customAttribute("seats"), base: nil, mine: 3, server: 2)])
    }
}

/// Loopback transport that answers the first `POST /messages` with Intercom's 404 for a contact
/// not yet messageable, and passes everything else through.
final class NotYetMessageable: HTTPTransport, @unchecked Sendable {
    private let inner = CurlTransport()
    private let lock = NSLock()
    private var refused = false

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let refuse = lock.withLock {
            guard request.method == "POST", request.url.path == "/messages", !refused else { return false }
            refused = true
            return true
        }
        guard refuse else { return try await inner.send(request) }
        let body = #"{"type":"error.list","request_id":"r1","errors":[{"code":"not_found","message":"User Not Found"}]}"#
        return HTTPResponse(status: 404, headers: [:], body: Data(body.utf8))
    }
}
