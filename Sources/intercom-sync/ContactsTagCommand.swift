import ArgumentParser
import Foundation
import IntercomSync

/// `contacts tag` and `contacts untag`: stage a tagging in the outbox, shown by the mirror at once.
struct ContactsTagCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tag",
        abstract: "Tag a contact, offline (nothing reaches Intercom until `outbox flush`).",
        discussion: """
            The contact is an Intercom id, a local id from `contacts create`, or an email the \
            mirror knows. The mirror shows the tags at once (`contacts query --tag`); the flush \
            tags the contact on Intercom, making a tag Intercom does not have yet, after the \
            contact's own create when it was made offline. Tagging twice is harmless.

            Examples:
              intercom-sync contacts tag ann@example.com VIP "churn risk"
              intercom-sync contacts untag 6762f0d01bb69f9f2193bb7d trial
              intercom-sync outbox flush
            """
    )

    @OptionGroup var options: TaggingOptions

    func run() async throws { try await options.stage(untag: false) }
}

struct ContactsUntagCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "untag",
        abstract: "Take tags off a contact, offline (nothing reaches Intercom until `outbox flush`).",
        discussion: """
            The same contacts and names as `contacts tag`. The mirror stops showing the tags at \
            once; the flush takes them off on Intercom.

            Example:
              intercom-sync contacts untag ann@example.com trial
            """
    )

    @OptionGroup var options: TaggingOptions

    func run() async throws { try await options.stage(untag: true) }
}

struct TaggingOptions: ParsableArguments {
    @OptionGroup var mirror: MirrorOptions

    @Argument(help: "The contact: an Intercom id, a local id, or an email in the mirror.")
    var contact: String

    @Argument(help: "Tag names (quote a name with spaces).")
    var tags: [String] = []

    @Flag(help: "Print {\"seqs\", \"contact\", \"waits_for\"} as JSON.")
    var json = false

    func validate() throws {
        if tags.isEmpty { throw ValidationError("name at least one tag after the contact") }
    }

    func stage(untag: Bool) async throws {
        let staged = try await mirror.facade(.existing).stageTagging(contact: contact, tags: tags, untag: untag)
        if json {
            Output.data(
                JSONValue.object([
                    "seqs": .array(staged.seqs.map { .int($0) }), "contact": .string(staged.contactID),
                    "waits_for": staged.waitsFor.map { .int($0) } ?? .null,
                ]).jsonText)
            return
        }
        let entries = staged.seqs.map { "#\($0)" }.joined(separator: ", ")
        var text = "staged \(untag ? "untagging" : "tagging") \(entries) of \(staged.contactID)"
        if let waitsFor = staged.waitsFor { text += ", after its create (#\(waitsFor))" }
        Output.line(text + "; the mirror shows it now, `intercom-sync outbox flush` sends it")
    }
}
