import ArgumentParser
import CLISupport
import Foundation
import IntercomSimulator
import IntercomSync

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Walk the whole loop against a built-in Intercom simulator (no account needed).",
        discussion: """
            Starts the simulator in this process on 127.0.0.1 with generated contacts, then: OAuth \
            login (code flow end to end), full pull (tags and companies too), an offline query (by \
            tag too), getContact revalidated by ETag (a 304), a CSV import, a contact created \
            offline, tagged and sent a message, a flush (the create, then its tag and the message to \
            the new Intercom id), a change on the "server" followed by \
            an incremental pull, and status. Each step prints what it did and is checked; the exit \
            status is 1 if any step did not behave as it should. It uses a throw-away mirror and \
            credentials file unless --db is given.

            Examples:
              intercom-sync demo
              intercom-sync demo --contacts 20000 --db demo.sqlite
            """
    )

    @Option(
        parsing: .unconditional, help: "Contacts the simulator starts with.")
    var contacts = 3_000

    @Option(
        name: .customLong("db"),
        help: ArgumentHelp("Keep the demo's mirror in this file (it must not exist yet).", valueName: "path"))
    var db: String?

    func validate() throws {
        guard (10...200_000).contains(contacts) else { throw ValidationError("--contacts must be from 10 to 200000") }
        if let db, FileManager.default.fileExists(atPath: db) {
            throw ValidationError("\(db) exists: the demo writes a new mirror; pick another path or leave out --db")
        }
    }

    func run() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("intercom-sync-demo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var configuration = SimulatorConfiguration()
        configuration.seedContacts = contacts
        configuration.seed = 2026
        configuration.seedTags = 20
        configuration.seedCompanies = 100
        configuration.rateLimit = 100_000
        configuration.accessToken = "demo-\(UUID().uuidString)"
        let simulator = try await IntercomSimulator.start(configuration)
        let demo = DemoRun(
            simulator: simulator, app: configuration, mirrorPath: db ?? folder.appendingPathComponent("mirror.sqlite").path,
            credentials: CredentialStore(path: folder.appendingPathComponent("config/credentials.json").path))
        let failures = await demo.run(seeded: contacts)
        await simulator.stop()
        if failures > 0 {
            Output.note("demo: \(failures == 1 ? "1 step" : "\(failures) steps") did not behave as it should")
            throw ExitCode(1)
        }
        Output.line("demo: every step behaved as it should")
    }
}

/// The demo's steps, each checked; a failed step is reported and the rest still run where they can.
private final class DemoRun {
    let simulator: IntercomSimulator
    /// The simulator's OAuth app.
    let app: SimulatorConfiguration
    let mirrorPath: String
    let credentials: CredentialStore
    var failures = 0
    let started = ContinuousClock.now

    init(simulator: IntercomSimulator, app: SimulatorConfiguration, mirrorPath: String, credentials: CredentialStore) {
        self.simulator = simulator
        self.app = app
        self.mirrorPath = mirrorPath
        self.credentials = credentials
    }

    struct StepFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Runs one step: prints its title, then ✓ and what it found, or ✗ and why.
    @discardableResult
    func step<T>(_ number: Int, _ title: String, _ body: () async throws -> (T, String)) async -> T? {
        let began = ContinuousClock.now
        do {
            let (value, detail) = try await body()
            let milliseconds = (ContinuousClock.now - began).asMilliseconds
            Output.line(String(format: "%2d. ✓ %@ — %@ (%lld ms)", number, title, detail, milliseconds))
            return value
        } catch {
            failures += 1
            Output.line(String(format: "%2d. ✗ %@ — %@", number, title, Advice.explained(error)))
            return nil
        }
    }

    func check(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        if !condition { throw StepFailure(message()) }
    }

    func run(seeded: Int) async -> Int {
        let base = URL(string: simulator.baseURL)!
        Output.line("intercom-sync demo: a simulated Intercom workspace of \(seeded) contacts at \(simulator.baseURL)\n")
        let login = await step(1, "OAuth login (authorization code)") { () -> (Credentials, String) in
            let listener = try LoopbackRedirectListener(port: 0)
            let flow = OAuthLogin(
                clientID: app.clientID, clientSecret: app.clientSecret, redirectURI: listener.redirectURI,
                endpoints: .init(apiBase: base))
            // The "browser": approve at the authorize URL, follow the redirect to the listener.
            async let redirect = listener.waitForRedirect(timeout: 10)
            let approval = try await DemoBrowser.get(flow.authorizeURL)
            guard let location = approval.location.flatMap(URL.init(string:)) else {
                throw StepFailure("the authorize page answered \(approval.status) without a redirect")
            }
            _ = try await DemoBrowser.get(location)
            let code = try flow.code(fromRedirect: try await redirect)
            let token = try await flow.exchange(code)
            let connected = try await Credentials.connect(token: token, method: .oauth, baseURL: base)
            try credentials.save(connected)
            let mode = try FileManager.default.attributesOfItem(atPath: credentials.path)[.posixPermissions] as? Int
            try check(mode == 0o600, "the credentials file has mode \(String(mode ?? 0, radix: 8)), not 600")
            try check(try credentials.load() == connected, "the stored credentials do not read back")
            return (connected, "state checked, code exchanged, \(connected), stored with mode 600")
        }
        guard let login else { return failures }
        // From here on the demo is an app like any other: it uses the library's facade alone.
        let mirror: IntercomMirror
        do {
            mirror = try await IntercomMirror.open(
                at: mirrorPath, connection: IntercomConnection(baseURL: login.apiBaseURL, accessToken: login.accessToken))
        } catch {
            Output.line("✗ cannot open the mirror: \(Advice.explained(error))")
            return failures + 1
        }

        await step(2, "full pull") { () -> (Void, String) in
            let summary = try await mirror.sync(.full)
            try check(summary.fetched == seeded, "fetched \(summary.fetched) of \(seeded)")
            let stored = try await mirror.status().contacts.synced
            try check(stored == seeded, "the mirror holds \(stored) of \(seeded)")
            return ((), "\(summary.fetched) contacts in \(summary.requests) requests")
        }

        let sample = await step(3, "offline query") { () -> (StoredContact, String) in
            let first = try require(
                try await mirror.contacts(matching: ContactQuery(limit: 1)).contacts.first, "the mirror is empty")
            let word = String((first.contact.name ?? first.contact.email ?? "").prefix(3))
            let found = try await mirror.contacts(matching: ContactQuery(search: word, limit: 5)).contacts
            try check(found.contains { $0.id == first.id } || found.count == 5, "searching \"\(word)\" missed \(first.id)")
            let vips = try await mirror.contacts(matching: ContactQuery(tags: ["VIP"], limit: 10_000)).contacts.count
            let vipID = await simulator.workspace.tagList().first { $0.name == "VIP" }?.id ?? ""
            let expected = await simulator.workspace.relationsByContact().values.count { $0.tags.contains(vipID) }
            try check(vips == expected && vips > 0, "--tag VIP found \(vips) contacts, Intercom has \(expected)")
            return (
                first,
                "search \"\(word)\" → \(found.count) contacts, e.g. \(found[0].contact.name ?? "?"); "
                    + "tag VIP → \(vips) contacts; no request made"
            )
        }

        if let sample {
            await step(4, "getContact revalidated by ETag") { () -> (Void, String) in
                let before = await simulator.workspace.requestLog().count
                let cached = try await mirror.contact(id: sample.id)
                let afterCached = await simulator.workspace.requestLog().count
                try check(cached?.contact == sample.contact && afterCached == before, "the cached read asked Intercom")
                // A list page carries no ETag: the first refresh fetches the contact with one.
                // A refresh checks the workspace beside it (GET /me): the contact's own request is
                // the one that tells.
                let path = "/contacts/\(sample.id)"
                let first = try await mirror.refreshContact(id: sample.id)
                let firstStatus = await simulator.workspace.requestLog().last { $0.path == path }?.status
                try check(first.contact?.etag != nil, "GET /contacts/\(sample.id) stored no ETag")
                let refreshed = try await mirror.refreshContact(id: sample.id)
                let last = await simulator.workspace.requestLog().last { $0.path == path }
                try check(refreshed.source == .revalidated && last?.status == 304, "expected a 304, got \(last?.status ?? 0)")
                try check(refreshed.contact?.contact == sample.contact, "the revalidated contact changed")
                return (
                    (),
                    "cached read: no request; first refresh \(firstStatus ?? 0) stored ETag \(first.contact?.etag ?? ""); "
                        + "second refresh: If-None-Match → 304"
                )
            }
        }

        await step(5, "CSV import") { () -> (Void, String) in
            let file = URL(fileURLWithPath: mirrorPath).deletingLastPathComponent().appendingPathComponent("demo-import.csv")
            try Self.sampleCSV().write(to: file, atomically: true, encoding: .utf8)
            let summary = try await mirror.importCSV(from: file)
            try check(
                summary.imported == 3 && summary.rejected == 1, "imported \(summary.imported), rejected \(summary.rejected)")
            return ((), "\(summary.read) rows: \(summary.imported) pending creates, \(summary.rejected) rejected (bad phone)")
        }

        let staged = await step(6, "create a contact offline, tag it, stage a message to it") {
            () -> ((StagedContact, StagedMessage), String) in
            let contact = try await mirror.stageContact(
                ContactDraft(email: "ada.demo@example.com", name: "Ada Demo", phone: "+44 20 7946 0000"))
            let message = try await mirror.stageMessage(
                MessageDraft(kind: .inApp, body: "Welcome aboard, Ada!", to: contact.localID))
            try check(message.waitsFor == contact.seq, "the message does not wait for its contact's create")
            try await mirror.stageTagging(contact: contact.localID, tags: ["Demo Signup"])
            let shown = try await mirror.contacts(matching: ContactQuery(tags: ["demo signup"])).contacts.map(\.id)
            try check(shown == [contact.localID], "the offline tag does not show in the mirror")
            let pending = try await mirror.contact(id: contact.localID)?.state
            try check(pending == .pending, "the new contact is \(String(describing: pending)), not pending")
            return (
                (contact, message),
                "\(contact.localID) is pending, tagged \"Demo Signup\" in the mirror; message #\(message.seq) waits for #\(contact.seq)"
            )
        }

        if let (contact, message) = staged {
            await step(7, "flush the outbox") { () -> (Void, String) in
                let summary = try await mirror.flush()
                try check(
                    summary.contactsCreated == 4 && summary.messagesSent == 1 && summary.taggings == 1,
                    "created \(summary.contactsCreated), sent \(summary.messagesSent), tagged \(summary.taggings)")
                let entries = try await mirror.outbox()
                let create = entries.first { $0.seq == contact.seq }
                let sent = entries.first { $0.seq == message.seq }
                let remoteID = try require(create?.remoteID, "the create has no Intercom id")
                try check(sent?.state == .sent && sent?.contactID == remoteID, "the message did not go to \(remoteID)")
                let received = try await simulator.workspace.sentMessages().map { try JSONValue(jsonText: $0) }
                try check(
                    received.filter { $0["body"]?.string == "Welcome aboard, Ada!" }.count == 1,
                    "Intercom did not receive the message exactly once")
                let alias = try await mirror.contact(id: contact.localID)?.id
                try check(alias == remoteID, "the local id does not resolve to \(remoteID)")
                let tagID = await simulator.workspace.tagList().first { $0.name == "Demo Signup" }?.id
                let tags = await simulator.workspace.relationsByContact()[remoteID]?.tags ?? []
                try check(tagID.map(tags.contains) == true, "Intercom's \(remoteID) is not tagged Demo Signup")
                return (
                    (),
                    "4 contacts created (3 imported), then its tag and the message to \(remoteID); "
                        + "\(contact.localID) now resolves to it"
                )
            }
        }

        if let sample {
            await step(8, "a change in Intercom, then an incremental pull") { () -> (Void, String) in
                simulator.workspace.clock.advance(by: 3_600)
                try await simulator.workspace.edit(id: sample.id, fieldsJSON: #"{"name": "Renamed In Intercom"}"#)
                let summary = try await mirror.sync()
                try check(summary.passes == [.incremental], "ran \(summary.passes), not an incremental pull")
                let name = try await mirror.contact(id: sample.id)?.contact.name
                try check(name == "Renamed In Intercom", "the mirror still has \(name ?? "nothing")")
                return ((), "\(summary.fetched) contacts fetched in \(summary.requests) requests; the new name is in the mirror")
            }
        }

        if let sample {
            await step(9, "an offline edit racing a change in Intercom") { () -> (Void, String) in
                // Offline: a new phone and name. Meanwhile a colleague renames the contact in
                // Intercom. The flush sends the phone, keeps both names as a conflict, and
                // keeping ours puts ours on Intercom: neither change is lost silently.
                let patch = ContactPatch([.name: "Renamed Offline", .phone: "+44 20 7946 0958"])
                try await mirror.stageEdit(patch, to: sample.id)
                try await simulator.workspace.edit(id: sample.id, fieldsJSON: #"{"name": "Renamed By A Colleague"}"#)
                let first = try await mirror.flush()
                try check(first.conflicts == 1, "the flush found \(first.conflicts) conflicts, not 1")
                let conflict = try require(try await mirror.conflicts().first, "no conflict is listed")
                let name = try require(conflict.fields.first { $0.field == .name }, "the conflict is not on the name")
                try check(
                    name.mine == "Renamed Offline" && name.theirs == "Renamed By A Colleague",
                    "the conflict shows \(name.mine) and \(String(describing: name.theirs))")
                func onIntercom() async throws -> JSONValue? {
                    try await simulator.workspace.exportContacts().map { try JSONValue(jsonText: $0) }
                        .first { $0["id"]?.string == sample.id }
                }
                let during = try await onIntercom()
                try check(during?["phone"] == "+44 20 7946 0958", "the phone, changed on one side only, was not sent")
                try check(during?["name"] == "Renamed By A Colleague", "the colleague's name was overwritten")
                try await mirror.resolve(seq: conflict.seq, keep: .mine)
                let second = try await mirror.flush()
                try check(second.contactsUpdated == 1, "keeping ours sent \(second.contactsUpdated) updates")
                try check(try await onIntercom()?["name"] == "Renamed Offline", "Intercom did not take our name")
                return (
                    (),
                    "phone sent; name in conflict (base \(name.base?.jsonText ?? "none"), mine \"Renamed Offline\", "
                        + "theirs \"Renamed By A Colleague\"); kept mine, and Intercom has it"
                )
            }
        }

        await step(10, "status") { () -> (Void, String) in
            let status = try await mirror.status()
            let total = status.contacts.total
            try check(total == seeded + 4, "the mirror holds \(total) contacts, not \(seeded + 4)")
            // The settled conflict's entry is superseded by the one that sent ours.
            try check(
                status.outbox.sent == 7 && status.outbox.superseded == 1 && status.outbox.needingAttention == 0,
                "the outbox has \(status.outbox) entries")
            return (
                (),
                "contacts \(ContactState.allCases.sorted { $0.rawValue < $1.rawValue }.map { "\($0.rawValue) \(status.contacts[$0])" }.joined(separator: ", ")); outbox sent \(status.outbox.sent), superseded \(status.outbox.superseded)"
            )
        }
        let seconds = Double((ContinuousClock.now - started).asMilliseconds) / 1000
        Output.line(String(format: "\nfinished in %.1f s", seconds))
        return failures
    }

    /// The CSV the demo imports: `Fixtures/csv/demo-import.csv` when the source tree is at hand,
    /// else the same rows built in.
    static func sampleCSV() -> String {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/csv/demo-import.csv")
        if let text = try? String(contentsOf: fixture, encoding: .utf8) { return text }
        return """
            Email,Full name,Phone number,Type
            grace.demo@example.com,Grace Demo,+1 415 555 0111,user
            linus.demo@example.com,"Demo, Linus",+46 70 123 45 00,lead
            bad.phone@example.com,Bad Phone,555 0199,user
            hedy.demo@example.com,Hedy Démo,,user

            """
    }
}

private func `require`<T>(_ value: T?, _ message: String) throws -> T {
    guard let value else { throw DemoRun.StepFailure(message) }
    return value
}
