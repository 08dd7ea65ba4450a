// A tour of the IntercomSync library as an app embeds it: only the public `IntercomMirror`
// facade talks to the engine. Intercom here is the project's simulator, on 127.0.0.1.
//
//     swift run MirrorTour
//
// It syncs a workspace, then watches a query while a second task stages a contact, queues a
// message to it and flushes the outbox, and prints each page the query yields.
import Foundation
import IntercomSimulator
import IntercomSync

@main
struct MirrorTour {
    static func main() async throws {
        // Intercom: a simulated workspace of 2,000 contacts on a free port of 127.0.0.1.
        var workspace = SimulatorConfiguration()
        workspace.seedContacts = 2_000
        let simulator = try await IntercomSimulator.start(workspace)
        defer { Task { await simulator.stop() } }

        // The mirror: a file in a fresh folder, connected with the workspace's access token.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mirror-tour-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let connection = IntercomConnection(baseURL: URL(string: simulator.baseURL)!, accessToken: simulator.accessToken)
        let mirror = try await IntercomMirror.open(
            at: folder.appendingPathComponent("contacts.sqlite").path, connection: connection)

        // 1. A first sync: every contact, pulled in parallel ranges.
        let synced = try await mirror.sync { progress in
            if let total = progress.total, progress.fetched == total, progress.pass == .full {
                print("  sync: all \(total) contacts received")
            }
        }
        print("synced \(synced.written) contacts in \(synced.requests) requests")
        let leads = try await mirror.contacts(matching: ContactQuery(role: .lead, sort: ContactSort(.name), limit: 3))
        print("first leads by name: \(leads.contacts.map { $0.contact.name ?? "-" }.joined(separator: ", "))")

        // 2. Watch the contacts named "Ada Tour" while another task creates one offline and
        //    flushes it to Intercom.
        let watched = ContactQuery(nameContains: "Ada Tour")
        let watcher = Task {
            var seen: [String] = []
            for try await page in mirror.observe(watched) {
                let line = page.contacts.map { "\($0.contact.name ?? "-") [\($0.state.rawValue)] \($0.id)" }
                print("observe: \(line.isEmpty ? "no contact" : line.joined(separator: "; "))")
                seen.append(page.contacts.first?.state.rawValue ?? "none")
                if page.contacts.first?.state == .synced { break }
            }
            return seen
        }
        let writer = Task {
            try await Task.sleep(for: .milliseconds(200))
            let staged = try await mirror.stageContact(ContactDraft(role: .lead, email: "ada@tour.example", name: "Ada Tour"))
            print("staged \(staged.localID)")
            try await mirror.stageMessage(MessageDraft(kind: .inApp, body: "Welcome aboard, Ada", to: staged.localID))
            let flushed = try await mirror.flush()
            print("flushed: \(flushed.contactsCreated) contact created, \(flushed.messagesSent) message sent")
        }
        try await writer.value
        let seen = try await watcher.value

        // 3. The badge an app would show.
        let status = try await mirror.status()
        print(
            "status: \(status.contacts.synced) contacts synced, \(status.outbox.pending) waiting, "
                + "\(status.outbox.sent) sent, \(status.outbox.needingAttention) need attention")
        try mirror.close()

        guard seen.first == "none", seen.contains("pending"), seen.last == "synced", status.outbox.sent == 2 else {
            print("unexpected: the query went through \(seen), and the outbox sent \(status.outbox.sent)")
            exit(1)
        }
        print("the query followed the contact from staged to synced")
    }
}
