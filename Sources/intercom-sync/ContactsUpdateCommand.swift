import ArgumentParser
import Foundation
import IntercomSync

/// `contacts update`: stage an edit of a contact's fields, shown by the mirror at once.
struct ContactsUpdateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update",
        abstract: "Change a contact's fields, offline (nothing reaches Intercom until `outbox flush`).",
        discussion: """
            The contact is an Intercom id, a local id from `contacts create`, or an email the \
            mirror knows. Only the fields given change; the mirror shows them at once. Several \
            updates before a flush are sent as one. The flush reads the contact from Intercom \
            first and merges field by field: a field nobody else changed is sent, one a \
            colleague changed too is sent by neither side and waits as a conflict \
            (`outbox list --state conflict`, then `outbox resolve`). A contact not pushed yet \
            takes the change into its create.

            Values are checked as a create's are: an email Intercom takes, a phone starting \
            with + and the country code, an http(s) avatar. --attribute sets a custom \
            attribute as text (as an import does); --attribute-json sets one to a JSON \
            number, boolean, string or null.

            Examples:
              intercom-sync contacts update ann@example.com --phone "+44 20 7946 0958"
              intercom-sync contacts update 6762f0d01bb69f9f2193bb7d --role lead \\
                  --attribute plan=enterprise --attribute-json seats=40
              intercom-sync contacts update ann@example.com --clear name
              intercom-sync outbox flush
            """
    )

    @OptionGroup var mirror: MirrorOptions

    @Argument(help: "The contact: an Intercom id, a local id, or an email in the mirror.")
    var contact: String

    @Option(help: "The new name.")
    var name: String?
    @Option(help: "The new email.")
    var email: String?
    @Option(help: "The new phone, in international format (+ and the country code).")
    var phone: String?
    @Option(help: "user or lead (Intercom turns no user into a lead).")
    var role: String?
    @Option(help: "The new avatar: an http(s) image URL.")
    var avatar: String?
    @Option(name: .customLong("external-id"), help: "The new external id.")
    var externalID: String?
    @Option(name: .customLong("owner-id"), help: "The admin who owns the contact (an id from Intercom).")
    var ownerID: String?
    @Option(help: ArgumentHelp("Whether the contact is unsubscribed from emails.", valueName: "true|false"))
    var unsubscribed: Bool?

    @Option(
        name: .customLong("attribute"),
        help: ArgumentHelp("Set a custom attribute to text (repeatable).", valueName: "key=value"))
    var attributes: [String] = []
    @Option(
        name: .customLong("attribute-json"),
        help: ArgumentHelp("Set a custom attribute to a JSON scalar (repeatable).", valueName: "key=json"))
    var jsonAttributes: [String] = []
    @Option(
        name: .customLong("unset-attribute"),
        help: ArgumentHelp("Clear a custom attribute (repeatable).", valueName: "key"))
    var unsetAttributes: [String] = []
    @Option(
        help: ArgumentHelp(
            "Clear a field (repeatable): name, phone, avatar, external_id or owner_id.", valueName: "field"))
    var clear: [String] = []

    @Flag(
        help: "Print {\"contact\", \"seq\", \"folded_into\", \"pending_fields\", \"in_conflict\", \"conflicts_settled\"} as JSON."
    )
    var json = false

    func validate() throws {
        _ = try patch()
    }

    /// The patch the flags describe; a flag given twice for one field, or a value that is not
    /// what its flag takes, is a usage error.
    func patch() throws -> ContactPatch {
        var patch = ContactPatch()
        func put(_ field: ContactField, _ value: JSONValue, _ flag: String) throws {
            guard patch[field] == nil else { throw ValidationError("\(field) is given twice (\(flag))") }
            patch[field] = value
        }
        let standard: [(ContactField, String?, String)] = [
            (.name, name, "--name"), (.email, email, "--email"), (.phone, phone, "--phone"), (.role, role, "--role"),
            (.avatar, avatar, "--avatar"), (.externalID, externalID, "--external-id"), (.ownerID, ownerID, "--owner-id"),
        ]
        for (field, value, flag) in standard { if let value { try put(field, .string(value), flag) } }
        if let unsubscribed { try put(.unsubscribedFromEmails, .bool(unsubscribed), "--unsubscribed") }
        for name in clear {
            guard let field = ContactField(name: name), [.name, .phone, .avatar, .externalID, .ownerID].contains(field)
            else {
                throw ValidationError("--clear takes name, phone, avatar, external_id or owner_id, not \(name)")
            }
            try put(field, .null, "--clear")
        }
        for pair in attributes {
            let (key, value) = try Self.split(pair, flag: "--attribute")
            try put(.customAttribute(key), .string(value), "--attribute")
        }
        for pair in jsonAttributes {
            let (key, text) = try Self.split(pair, flag: "--attribute-json")
            guard let value = try? JSONValue(jsonText: text), !value.isContainer else {
                throw ValidationError("--attribute-json \(pair): the value must be a JSON number, boolean, string or null")
            }
            // A whole number past 64 bits would be stored rounded, as a double.
            if case .double = value, text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "-") }) {
                throw ValidationError(
                    "--attribute-json \(pair): \(text) is too large for a whole number (at most 19 digits); "
                        + "quote it to store it as text")
            }
            try put(.customAttribute(key), value, "--attribute-json")
        }
        for key in unsetAttributes { try put(.customAttribute(key), .null, "--unset-attribute") }
        guard !patch.isEmpty else { throw ValidationError("give at least one field to change") }
        return patch
    }

    static func split(_ pair: String, flag: String) throws -> (String, String) {
        guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
            throw ValidationError("\(flag) \(pair): write it as key=value")
        }
        return (String(pair[..<equals]), String(pair[pair.index(after: equals)...]))
    }

    func run() async throws {
        let facade = try await mirror.facade(.existing)
        let patch = try patch()
        let before = try await facade.conflicts()
        let staged = try await facade.stageEdit(patch, to: contact)
        // A field in conflict waits for `outbox resolve`, whatever it is edited to, but one
        // edited to Intercom's value is settled.
        func edited(_ conflicts: [EditConflict]) -> [(seq: Int64, field: ContactField)] {
            conflicts.filter { $0.contactID == staged.contactID }.flatMap { conflict in
                conflict.fields.map { (conflict.seq, $0.field) }.filter { patch.fields.contains($0.1) }
            }
        }
        let waiting = edited(try await facade.conflicts())
        let settled = edited(before).filter { old in !waiting.contains { $0.field == old.field } }
        if json {
            Output.data(
                JSONValue.object([
                    "contact": .string(staged.contactID), "seq": staged.seq.map { .int($0) } ?? .null,
                    "folded_into": staged.foldedInto.map { .int($0) } ?? .null,
                    "pending_fields": .array(staged.pendingFields.map { .string($0.description) }),
                    "in_conflict": .array(
                        waiting.map { .object(["seq": .int($0.seq), "field": .string($0.field.description)]) }),
                    "conflicts_settled": .array(
                        settled.map { .object(["seq": .int($0.seq), "field": .string($0.field.description)]) }),
                ]).jsonText)
            return
        }
        for (seq, field) in waiting {
            Output.line(
                "\(field) of \(staged.contactID) stays in conflict (#\(seq)) with this value as yours: "
                    + "`intercom-sync outbox resolve \(seq) --keep mine` sends it")
        }
        for (seq, field) in settled {
            Output.line("\(field) of \(staged.contactID) agrees with Intercom's value now: its conflict (#\(seq)) is settled")
        }
        if staged.seq == nil, staged.foldedInto == nil, !waiting.isEmpty || !settled.isEmpty { return }
        if let create = staged.foldedInto {
            Output.line("updated \(staged.contactID) in its create (#\(create)), which `intercom-sync outbox flush` sends")
        } else if let seq = staged.seq {
            let fields = staged.pendingFields.map(\.description).joined(separator: ", ")
            Output.line(
                "staged #\(seq): \(fields) of \(staged.contactID); the mirror shows it now, "
                    + "`intercom-sync outbox flush` merges it with Intercom's")
        } else {
            Output.line("\(staged.contactID) is back to Intercom's values: nothing left to send")
        }
    }
}

extension JSONValue {
    /// An object or an array.
    fileprivate var isContainer: Bool {
        switch self {
        case .object, .array: true
        default: false
        }
    }
}
