import ArgumentParser
import Foundation
import IntercomSync

/// `contacts delete`: stage deleting a contact, hidden by the mirror at once.
struct ContactsDeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete a contact, offline (nothing reaches Intercom until `outbox flush`).",
        discussion: """
            The contact is an Intercom id or an email the mirror knows. It leaves the mirror's \
            answers at once (a tombstone, as a contact deleted on Intercom is: \
            `contacts query --include-tombstoned` still shows it), and the flush deletes it on \
            Intercom after whatever was staged for it before. A delete wins over the contact's \
            pending edits, whose entries end superseded with that reason. Until the flush, `outbox drop` undoes \
            it. A contact created offline and not pushed yet has no delete: drop its create.

            Examples:
              intercom-sync contacts delete spam@example.com
              intercom-sync outbox flush
            """
    )

    @OptionGroup var mirror: MirrorOptions

    @Argument(help: "The contact: an Intercom id, or an email in the mirror.")
    var contact: String

    @Flag(help: "Print {\"seq\", \"contact\", \"dropped_edits\"} as JSON.")
    var json = false

    func run() async throws {
        let staged = try await mirror.facade(.existing).stageDelete(contact: contact)
        if json {
            Output.data(
                JSONValue.object([
                    "seq": .int(staged.seq), "contact": .string(staged.contactID),
                    "dropped_edits": .array(staged.droppedEdits.map { .int($0) }),
                ]).jsonText)
            return
        }
        var line = "staged delete #\(staged.seq) of \(staged.contactID); the mirror no longer shows it"
        if !staged.droppedEdits.isEmpty {
            line += "; its edits " + staged.droppedEdits.map { "#\($0)" }.joined(separator: ", ") + " are dropped"
        }
        Output.line(line + "; `intercom-sync outbox flush` deletes it on Intercom (`outbox drop` undoes it)")
    }
}
