import ArgumentParser
import Foundation
import IntercomSync

struct ContactsCreateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a contact locally now; it is pushed to Intercom by `outbox flush`.",
        discussion: """
            The contact is written to the mirror at once with a local id (local_…) and state \
            pending, together with its outbox entry, in one transaction: it works offline, and \
            queries and `contacts get` see it immediately. `outbox flush` creates it in Intercom \
            exactly once (a create whose answer was lost meets Intercom's 409 and adopts the \
            contact it made) and the local id keeps working as an alias of the Intercom id. \
            Invalid input is refused before anything is written, naming each field.

            Examples:
              intercom-sync contacts create --email ann@example.com --name "Ann O'Neil" \\
                  --phone "+44 20 7946 0958"
              intercom-sync contacts create --email lead@example.com --role lead \\
                  --attribute plan=pro --attribute seats=3
              intercom-sync outbox flush
            """
    )

    @OptionGroup var mirror: MirrorOptions

    @Option(help: "The contact's email (required).")
    var email: String

    @Option(help: "user or lead.")
    var role: ContactRole = .user

    @Option(help: "Full name.")
    var name: String?

    @Option(help: "Phone in international format, starting with + (\"+44 20 7946 0958\").")
    var phone: String?

    @Option(help: "Avatar image URL (http or https).")
    var avatar: String?

    @Option(name: .customLong("external-id"), help: "Your own id for the contact.")
    var externalID: String?

    @Option(
        name: .customLong("attribute"),
        help: ArgumentHelp(
            "A custom attribute (repeatable). Numbers, true/false and null are typed; anything else is text.",
            valueName: "name=value"))
    var attributes: [String] = []

    @Flag(help: "Stage it even if a contact in the mirror has this email (the push then adopts that contact).")
    var allowDuplicateEmail = false

    @Flag(help: "Print {\"id\": local id, \"seq\": outbox entry} as JSON.")
    var json = false

    func run() async throws {
        var customAttributes: [String: JSONValue] = [:]
        for attribute in attributes {
            guard let equals = attribute.firstIndex(of: "=") else {
                throw ValidationError("--attribute \(attribute): write it as name=value")
            }
            customAttributes[String(attribute[..<equals])] = JSONValue(
                commandLineValue: String(attribute[attribute.index(after: equals)...]))
        }
        let draft = ContactDraft(
            role: role, email: email.trimmingCharacters(in: .whitespaces), name: name, phone: phone, avatar: avatar,
            externalID: externalID, customAttributes: customAttributes)
        try draft.validate()
        let staged = try await mirror.facade(.createIfMissing).stageContact(
            draft, allowingDuplicateEmail: allowDuplicateEmail)
        if json {
            Output.data(JSONValue.object(["id": .string(staged.localID), "seq": .int(staged.seq)]).jsonText)
        } else {
            Output.line("staged contact \(staged.localID) (outbox #\(staged.seq)); `intercom-sync outbox flush` pushes it")
        }
    }
}
