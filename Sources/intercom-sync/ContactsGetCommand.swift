import ArgumentParser
import Foundation
import IntercomSync

struct ContactsGetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Show one contact from the mirror.",
        discussion: """
            Reads the mirror only; no network request is made.

            Examples:
              intercom-sync contacts get 6762f0d01bb69f9f2193bb7d --offline
              intercom-sync contacts get 6762f0d01bb69f9f2193bb7d --json | jq .contact.email
            """
    )

    @OptionGroup var mirror: MirrorOptions

    @Argument(help: "The contact's Intercom id (or local id while pending).")
    var id: String

    @Flag(help: "Answer from the mirror without contacting Intercom.")
    var offline = false

    @Flag(help: "Print {\"contact\": <Intercom's body>, \"mirror\": {state, etag, fetched_at, validated_at}}.")
    var json = false

    func run() throws {
        let store = try mirror.open(.existing)
        guard let stored = try store.contact(id: id) else {
            throw CommandFailure("no contact with id \(id) in the mirror \(mirror.resolvedPath)")
        }
        if json {
            Output.line(MirrorMetadata.json(for: stored))
        } else {
            Output.line(ContactRenderer.details(stored))
        }
    }
}

enum MirrorMetadata {
    static func json(for stored: StoredContact) -> String {
        var fields: [String: JSONValue] = ["state": .string(stored.state.rawValue)]
        fields["etag"] = stored.etag.map(JSONValue.string) ?? .null
        fields["fetched_at"] = stored.fetchedAt.map { .int(Int64($0)) } ?? .null
        fields["validated_at"] = stored.validatedAt.map { .int(Int64($0)) } ?? .null
        return "{\"contact\":\(stored.body ?? "null"),\"mirror\":\(JSONValue.object(fields).jsonText)}"
    }
}
