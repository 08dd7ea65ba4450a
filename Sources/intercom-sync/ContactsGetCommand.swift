import ArgumentParser
import CLISupport
import Foundation
import IntercomSync

struct ContactsGetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Show one contact, from the mirror or revalidated with Intercom.",
        discussion: """
            By default the mirror answers, with no network request; a contact the mirror does not \
            have is fetched from Intercom and stored. --refresh revalidates with Intercom (a 304 \
            when the stored ETag still matches); --max-age revalidates only an answer older than \
            that. A contact deleted in Intercom is tombstoned; one merged into another leads to \
            the survivor. Without a network the mirror answers and says how old its answer is. \
            The contact's notes follow: those written offline and not sent yet, and those read \
            from Intercom (a contact's version lists only their ids: a revalidation reads the \
            notes the mirror lacks).

            Examples:
              intercom-sync contacts get 6762f0d01bb69f9f2193bb7d --offline
              intercom-sync contacts get 6762f0d01bb69f9f2193bb7d --refresh
              intercom-sync contacts get ann@example.com --offline
              intercom-sync contacts get 6762f0d01bb69f9f2193bb7d --max-age 3600 --json \\
                  | jq .contact.email
            """
    )

    @OptionGroup var mirror: MirrorOptions
    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "The contact's Intercom id (or local id while pending), or its email.")
    var id: String

    @Flag(help: "Answer from the mirror only; never contact Intercom.")
    var offline = false

    @Flag(help: "Revalidate with Intercom now.")
    var refresh = false

    @Option(
        name: .customLong("max-age"), parsing: .unconditional,
        help: ArgumentHelp("Revalidate when the answer is older than this.", valueName: "seconds"))
    var maximumAge: Int?

    @Flag(
        help:
            "Print {\"contact\": <Intercom's body, your unsent edits on top>, \"mirror\": {state, etag, fetched_at, validated_at, source, age, tags, companies, segments, notes, notes_not_read, pending_edits}}."
    )
    var json = false

    func validate() throws {
        if id.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("give a contact's id or email") }
        if [offline, refresh, maximumAge != nil].filter({ $0 }).count > 1 {
            throw ValidationError("choose one of --offline, --refresh and --max-age")
        }
        if let maximumAge, maximumAge < 0 { throw ValidationError("--max-age must be 0 or more seconds") }
    }

    /// The id of the one contact of the mirror with `email`: as `contacts tag` and `messages
    /// send` take an email.
    static func contactID(email: String, in mirror: IntercomMirror) async throws -> String {
        var query = ContactQuery()
        query.email = email
        query.limit = 6
        let matches = try await mirror.contacts(matching: query).contacts
        switch matches.count {
        case 0:
            throw CommandFailure(
                "no contact with email \(email) in the mirror: `intercom-sync sync` brings Intercom's contacts")
        case 1:
            return matches[0].contact.id
        default:
            let ids = matches.prefix(5).map(\.contact.id).joined(separator: ", ")
            throw CommandFailure("several contacts have email \(email) (\(ids)): give the id instead")
        }
    }

    func run() async throws {
        // Without a connection first: when no request is needed, neither is a token.
        let unconnected = try await mirror.facade(
            refresh || maximumAge != nil ? .createIfMissing : (offline ? .readOnly : .existing),
            configuration: connection.configured(IntercomMirror.Configuration()))
        let freshness: ContactFreshness =
            offline ? .offline : (refresh ? .refresh : (maximumAge.map(ContactFreshness.maximumAge) ?? .cached))
        let id = self.id.contains("@") ? try await Self.contactID(email: self.id, in: unconnected) : self.id
        let answer: ContactAnswer
        do {
            answer = try await unconnected.contact(id: id, freshness: freshness)
        } catch let error as SyncError where error.kind == .notConnected {
            answer = try await unconnected.connecting(to: try connection.intercomConnection())
                .contact(id: id, freshness: freshness)
        }
        guard let stored = answer.contact else {
            let place = freshness == .offline ? "in the mirror \(mirror.resolvedPath)" : "in the mirror or in Intercom"
            throw CommandFailure("no contact with id \(id) \(place)")
        }
        let links = try await unconnected.links(ofContact: stored.id)
        let notes = try await unconnected.notes(ofContact: stored.id)
        let edits = try await unconnected.pendingEdits(ofContact: stored.id)
        if json {
            Output.data(MirrorMetadata.json(for: stored, answer: answer, links: links, notes: notes, edits: edits))
        } else {
            let conflicts = edits.isEmpty ? [] : try await unconnected.conflicts().filter { $0.contactID == stored.id }
            let inConflict = Set(conflicts.flatMap { $0.fields.map(\.field) })
            Output.line(ContactRenderer.details(stored, links: links, pendingEdits: edits, inConflict: inConflict))
            if let text = ContactRenderer.notes(notes) { Output.line(text) }
            let entries = try await unconnected.outbox(ofContact: stored.id)
            if let note = Self.note(answer, stored: stored, edited: !edits.isEmpty, entries: entries) { Output.note(note) }
        }
    }

    /// `45 s`, `12 min`, `3 h`, `2 d`: how long ago, for people.
    static func duration(_ seconds: Int) -> String {
        switch seconds {
        case ..<60: "\(seconds) s"
        case ..<3_600: "\(seconds / 60) min"
        case ..<86_400: "\(seconds / 3_600) h"
        default: "\(seconds / 86_400) d"
        }
    }

    /// What a person should know about the answer: where it came from, and what waits for the
    /// contact in the outbox (`entries`) that the fields shown do not say.
    static func note(_ answer: ContactAnswer, stored: StoredContact, edited: Bool, entries: [OutboxEntry]) -> String? {
        var notes: [String] = []
        if let merged = answer.mergedFrom { notes.append("\(merged) was merged into \(stored.id) in Intercom") }
        let waiting = entries.last {
            [.archiveContact, .deleteContact].contains($0.kind) && [.pending, .inFlight].contains($0.state)
        }
        if let waiting {
            let action = waiting.kind == .deleteContact ? "deleted" : "archived"
            notes.append(
                "this contact is to be \(action) (#\(waiting.seq), not sent yet): `intercom-sync outbox drop "
                    + "\(waiting.seq)` undoes that")
        } else if stored.state == .tombstoned {
            notes.append("this contact is gone from Intercom (deleted, archived or merged)")
        }
        for entry in entries where entry.kind == .updateContact && entry.state == .failed {
            notes.append(
                "Intercom refused your edit (#\(entry.seq)): \(entry.lastError?.message ?? "no reason given"); "
                    + "`intercom-sync outbox drop \(entry.seq)` brings back Intercom's values")
        }
        switch answer.source {
        case .offline:
            let age = answer.age.map { "\(Self.duration($0)) old" } ?? "of unknown age"
            notes.append("\(answer.offlineReason ?? "Intercom could not be reached"); this answer is \(age)")
        case .revalidated:
            notes.append("confirmed current by Intercom" + (edited ? ", but for your edits (under `edited`)" : ""))
        case .fetched: notes.append("fetched from Intercom" + (edited ? ", with your edits (under `edited`) on top" : ""))
        case .mirror: break
        }
        return notes.isEmpty ? nil : notes.joined(separator: "\n")
    }
}

enum MirrorMetadata {
    static func json(
        for stored: StoredContact, answer: ContactAnswer? = nil, links: ContactLinks? = nil, notes: ContactNotes? = nil,
        edits: [PendingEdit]? = nil
    ) -> String {
        var fields: [String: JSONValue] = ["state": .string(stored.state.rawValue)]
        if let links {
            fields["tags"] = .array(links.tags.map(JSONValue.string))
            fields["companies"] = .array(links.companies.map(JSONValue.string))
            fields["segments"] = .array(links.segments.map(JSONValue.string))
        }
        if let notes {
            fields["notes"] = .array(
                notes.notes.map { note in
                    .object([
                        "id": note.id.map(JSONValue.string) ?? .null, "body": .string(note.body),
                        "author_id": note.authorID.map(JSONValue.string) ?? .null,
                        "author_name": note.authorName.map(JSONValue.string) ?? .null,
                        "created_at": .int(Int64(note.createdAt)), "outbox_seq": note.outboxSeq.map { .int($0) } ?? .null,
                        "outbox_state": note.outboxState.map { .string($0.rawValue) } ?? .null,
                    ])
                })
            fields["notes_not_read"] = .int(Int64(notes.missing))
        }
        if let edits {
            fields["pending_edits"] = .array(
                edits.map {
                    .object(["field": .string($0.field.description), "base": $0.base ?? .null, "mine": $0.mine])
                })
        }
        fields["etag"] = stored.etag.map(JSONValue.string) ?? .null
        fields["fetched_at"] = stored.fetchedAt.map { .int(Int64($0)) } ?? .null
        fields["validated_at"] = stored.validatedAt.map { .int(Int64($0)) } ?? .null
        if let answer {
            fields["source"] = .string("\(answer.source)")
            fields["age_seconds"] = answer.age.map { .int(Int64($0)) } ?? .null
            fields["merged_from"] = answer.mergedFrom.map(JSONValue.string) ?? .null
        }
        return "{\"contact\":\(stored.body ?? "null"),\"mirror\":\(JSONValue.object(fields).jsonText)}"
    }
}
