import ArgumentParser
import Foundation
import IntercomSync

/// `contacts note`: stage a note on a contact, sent at most once by the next flush.
struct ContactsNoteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "note",
        abstract: "Write a note on a contact, offline (nothing reaches Intercom until `outbox flush`).",
        discussion: """
            The contact is an Intercom id, a local id from `contacts create`, or an email the \
            mirror knows. HTML is kept as Intercom keeps it. The note is written by the admin \
            --admin-id names, else by the token's own. Like a message it is sent at most once: \
            one whose answer was lost becomes unknown (`outbox list`), and is sent again only \
            by `outbox retry`. A note on a contact created offline waits for its create.

            Examples:
              intercom-sync contacts note ann@example.com "Called: renewal in May"
              intercom-sync contacts note 6762f0d01bb69f9f2193bb7d "<p>VIP</p>" \\
                  --admin-id 991267459
              intercom-sync outbox flush
            """
    )

    @OptionGroup var mirror: MirrorOptions

    @Argument(help: "The contact: an Intercom id, a local id, or an email in the mirror.")
    var contact: String

    @Argument(help: "The note's text (HTML allowed).")
    var text: String

    @Option(name: .customLong("admin-id"), help: "The admin who writes it (an id from Intercom).")
    var adminID: String?

    @Flag(help: "Print {\"seq\", \"contact\", \"waits_for\"} as JSON.")
    var json = false

    func run() async throws {
        let staged = try await mirror.facade(.existing).stageNote(text, to: contact, adminID: adminID)
        if json {
            Output.data(
                JSONValue.object([
                    "seq": .int(staged.seq), "contact": .string(staged.contactID),
                    "waits_for": staged.waitsFor.map { .int($0) } ?? .null,
                ]).jsonText)
            return
        }
        var line = "staged note #\(staged.seq) on \(staged.contactID)"
        if let waitsFor = staged.waitsFor { line += ", after its create (#\(waitsFor))" }
        Output.line(line + "; `intercom-sync outbox flush` writes it")
    }
}
