import Foundation
import IntercomSync
import Testing

/// `IntercomMirror.observe` sees what another process writes to the same mirror file: here the
/// `intercom-sync` binary, run as a subprocess, staging contacts and tagging them.
@Suite struct FacadeObservationTests {
    @Test(.timeLimit(.minutes(1))) func observeYieldsAfterAnotherProcessWrites() async throws {
        let workspace = try Workspace(contacts: 50)
        let mirror = try await IntercomMirror.open(
            at: workspace.db, configuration: IntercomMirror.Configuration(observationInterval: .milliseconds(50)))
        let query = ContactQuery(search: "observed", sort: ContactSort(.email))
        var pages = mirror.observe(query).makeAsyncIterator()
        #expect(try await pages.next()?.contacts.isEmpty == true)

        let created = try CLI.run([
            "contacts", "create", "--email", "first.observed@example.com", "--name", "First Observed", "--db",
            workspace.db,
        ])
        #expect(created.status == 0, "\(created.stderr)")
        let afterCreate = try #require(try await pages.next())
        #expect(afterCreate.contacts.map(\.contact.email) == ["first.observed@example.com"])

        // A write this query does not see yields nothing; the next one it sees yields once.
        #expect(try CLI.run(["contacts", "create", "--email", "unrelated@example.com", "--db", workspace.db]).status == 0)
        #expect(
            try CLI.run([
                "contacts", "create", "--email", "second.observed@example.com", "--name", "Second Observed", "--db",
                workspace.db,
            ]).status == 0)
        let afterSecond = try #require(try await pages.next())
        #expect(
            afterSecond.contacts.map(\.contact.email) == ["first.observed@example.com", "second.observed@example.com"])

        // The status badge sees them too.
        var statuses = mirror.observeStatus().makeAsyncIterator()
        #expect(try await statuses.next()?.outbox.pending == 3)
        #expect(
            try CLI.run(["contacts", "tag", "first.observed@example.com", "VIP", "--db", workspace.db]).status == 0)
        #expect(try await statuses.next()?.outbox.pending == 4)
        try mirror.close()
    }
}
