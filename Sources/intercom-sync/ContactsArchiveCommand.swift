import ArgumentParser
import Foundation
import IntercomSync

/// `contacts archive` and `contacts unarchive`: staged, shown by the mirror at once.
struct ContactsArchiveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "archive",
        abstract: "Archive a contact, offline (nothing reaches Intercom until `outbox flush`).",
        discussion: """
            The contact is an Intercom id or an email the mirror knows. It leaves the mirror's \
            answers at once, as Intercom hides an archived contact (`contacts query --archived` \
            shows it); the flush archives it on Intercom after whatever was staged for it \
            before. `contacts unarchive` brings it back.

            Examples:
              intercom-sync contacts archive old@example.com
              intercom-sync contacts query --archived
              intercom-sync outbox flush
            """
    )

    @OptionGroup var options: ArchiveOptions

    func run() async throws { try await options.stage(unarchive: false) }
}

struct ContactsUnarchiveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unarchive",
        abstract: "Unarchive a contact, offline (nothing reaches Intercom until `outbox flush`).",
        discussion: """
            The contact shows in the mirror again at once; the flush unarchives it on Intercom. \
            A contact whose archive was not sent yet simply has it taken back.

            Example:
              intercom-sync contacts unarchive old@example.com
            """
    )

    @OptionGroup var options: ArchiveOptions

    func run() async throws { try await options.stage(unarchive: true) }
}

struct ArchiveOptions: ParsableArguments {
    @OptionGroup var mirror: MirrorOptions

    @Argument(help: "The contact: an Intercom id, or an email in the mirror.")
    var contact: String

    @Flag(help: "Print {\"seq\", \"contact\", \"withdrew\"} as JSON.")
    var json = false

    func stage(unarchive: Bool) async throws {
        let staged = try await mirror.facade(.existing).stageArchive(contact: contact, unarchive: unarchive)
        if json {
            Output.data(
                JSONValue.object([
                    "seq": staged.seq.map { .int($0) } ?? .null, "contact": .string(staged.contactID),
                    "withdrew": staged.withdrew.map { .int($0) } ?? .null,
                ]).jsonText)
            return
        }
        if let withdrew = staged.withdrew {
            Output.line("took back #\(withdrew), not sent yet: \(staged.contactID) is as Intercom has it")
        } else {
            Output.line(
                "staged \(unarchive ? "unarchive" : "archive") #\(staged.seq ?? 0) of \(staged.contactID); the mirror "
                    + "\(unarchive ? "shows it again" : "no longer shows it"), `intercom-sync outbox flush` applies it")
        }
    }
}
