import ArgumentParser
import Foundation
import IntercomSync

struct MessagesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "messages",
        abstract: "Stage messages to contacts; `outbox flush` sends them.",
        subcommands: [MessagesSendCommand.self]
    )
}

struct MessagesSendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Stage a message in the outbox (nothing is sent until `outbox flush`).",
        discussion: """
            The recipient is an Intercom id, a local id from `contacts create`, or an email the \
            mirror knows. A message to a contact not pushed yet waits for that contact's create, \
            then goes to its Intercom id. Messages are sent at most once: one whose fate is \
            unknown (the answer was lost) is never re-sent without `outbox retry`. The sender is \
            the admin the token belongs to (GET /me) unless --from names another admin.

            Examples:
              intercom-sync messages send --to ann@example.com \\
                  --body "Your order has shipped"
              intercom-sync messages send --to 6762f0d01bb69f9f2193bb7d --type email \\
                  --subject "Welcome" --body "<p>Hello!</p>" --template personal
              intercom-sync outbox flush
            """
    )

    @OptionGroup var mirror: MirrorOptions

    @Option(help: "Recipient: an Intercom id, a local id, or an email in the mirror.")
    var to: String

    @Option(help: "The message: plain text or HTML.")
    var body: String

    @Option(name: .customLong("type"), help: "inapp (or in_app) or email.")
    var kind: MessageDraft.Kind = .inApp

    @Option(help: "Subject line (required for email).")
    var subject: String?

    @Option(help: "Email template: plain (default) or personal.")
    var template: MessageDraft.Template?

    @Option(help: "The sending admin's id. Default: the admin the access token belongs to.")
    var from: String?

    @Flag(help: "Print {\"seq\", \"to\", \"waits_for\"} as JSON.")
    var json = false

    func run() async throws {
        let draft = MessageDraft(kind: kind, subject: subject, body: body, template: template, to: to, from: from)
        try draft.validate()
        let staged = try await mirror.facade(.existing).stageMessage(draft)
        if json {
            Output.data(
                JSONValue.object([
                    "seq": .int(staged.seq), "to": .string(staged.recipientID),
                    "waits_for": staged.waitsFor.map { .int($0) } ?? .null,
                ]).jsonText)
        } else {
            var text = "staged message #\(staged.seq) to \(staged.recipientID)"
            if let waitsFor = staged.waitsFor { text += ", after its contact's create (#\(waitsFor))" }
            Output.line(text + "; `intercom-sync outbox flush` sends it")
        }
    }
}

extension MessageDraft.Kind: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { ["inapp", "email"] }
}

extension MessageDraft.Template: ExpressibleByArgument {}
