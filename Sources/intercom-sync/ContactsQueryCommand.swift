import ArgumentParser
import CLISupport
import Foundation
import IntercomSync

struct ContactsQueryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Find contacts in the mirror, offline.",
        discussion: """
            Filters combine with AND. Results come a page at a time (--limit); the next page's \
            cursor is printed on stderr (or as next_cursor in JSON), and --all walks every page.

            Examples:
              intercom-sync contacts query --email ana@example.com
              intercom-sync contacts query --search "jose obri" --format json
              intercom-sync contacts query --role lead --updated-since 2025-01-01 \\
                  --sort name
              intercom-sync contacts query --attribute plan=pro --attribute vip=true \\
                  --all --format csv > vip.csv
              intercom-sync contacts query --tag VIP --company "Acme Inc" \\
                  --updated-before 2025-06-01
              intercom-sync contacts query --any-tag churn-risk --any-tag at-risk \\
                  --segment "Active users"
            """
    )

    @OptionGroup var mirror: MirrorOptions

    @Option(help: "Exact email, case-insensitive.")
    var email: String?

    @Option(name: .customLong("external-id"), help: "Your own id for the contact (Intercom's external_id).")
    var externalID: String?

    @Option(help: "user or lead.")
    var role: ContactRole?

    @Option(name: .customLong("name"), help: "Part of the name, case-insensitive.")
    var nameContains: String?

    @Option(help: "Words that start words of the name, email or phone, or of a company's name (accents ignored).")
    var search: String?

    @Option(name: .customLong("updated-since"), help: "Updated at or after: 2025-03-01, 2025-03-01T12:00:00Z or Unix seconds.")
    var updatedSince: String?

    @Option(name: .customLong("updated-before"), help: "Updated before: same forms as --updated-since.")
    var updatedBefore: String?

    @Option(name: .customLong("state"), help: "Only contacts in this state (synced, pending, tombstoned); repeatable.")
    var states: [ContactState] = []

    @Flag(help: "Only contacts written locally and not yet pushed (same as --state pending).")
    var pending = false

    @Flag(name: .customLong("include-tombstoned"), help: "Also show contacts deleted or merged away on Intercom.")
    var includeTombstoned = false

    @Flag(help: "Show only the contacts archived with `contacts archive` (sent or waiting), not unarchived since.")
    var archived = false

    @Option(help: ArgumentHelp("Carries this tag (case-insensitive); repeatable: every one must match.", valueName: "name"))
    var tag: [String] = []

    @Option(
        name: .customLong("any-tag"),
        help: ArgumentHelp("Carries at least one of these tags; repeatable.", valueName: "name"))
    var anyTag: [String] = []

    @Option(
        help: ArgumentHelp(
            "Belongs to this company, by name (case-insensitive) or company_id; repeatable: any of them.",
            valueName: "name"))
    var company: [String] = []

    @Option(
        help: ArgumentHelp(
            "In this segment; repeatable: every one must match. Needs memberships (sync --segments).",
            valueName: "name"))
    var segment: [String] = []

    @Option(
        name: .customLong("attribute"),
        help: ArgumentHelp(
            "A custom attribute equal to a value; repeatable. Numbers, true/false and null match those JSON types; "
                + "quote a value to match text that reads as one (--attribute 'seats=\"3\"', as `contacts update "
                + "--attribute` stores text).", valueName: "name=value"))
    var attributes: [String] = []

    @Option(
        help: ArgumentHelp(
            "updated_at, name, email, relevance or stored.",
            discussion: """
                relevance (with --search) puts names that begin with the words first, then names \
                with every word, then email and phone matches. stored is the mirror's own order.
                """))
    var sort: ContactSort.Field = .updatedAt

    @Option(help: "asc or desc. Default: desc for updated_at, asc otherwise.")
    var order: SortOrder?

    @Option(
        parsing: .unconditional, help: "Contacts per page (1-10000).")
    var limit = 50

    @Option(help: "Continue from the cursor a previous page printed.")
    var after: String?

    @Flag(help: "Walk every page, not just the first.")
    var all = false

    @Option(help: "table, json, ndjson or csv.")
    var format: ContactRenderer.Format = .table

    enum SortOrder: String, ExpressibleByArgument {
        case asc, desc
    }

    func validate() throws {
        guard (1...10_000).contains(limit) else {
            throw ValidationError("--limit must be between 1 and 10000, not \(limit).")
        }
        for (flag, value) in [("--updated-since", updatedSince), ("--updated-before", updatedBefore)] {
            if let value, UnixTime.parse(value) == nil {
                throw ValidationError("\(flag) \"\(value)\" is not a date: use 2025-03-01, 2025-03-01T12:00:00Z or Unix seconds.")
            }
        }
        for attribute in attributes where !attribute.contains("=") || attribute.hasPrefix("=") {
            throw ValidationError("--attribute \"\(attribute)\" must look like name=value.")
        }
        if sort == .relevance && search == nil {
            throw ValidationError("--sort relevance needs --search.")
        }
        if all && after != nil {
            throw ValidationError("--all starts from the first page; drop --after.")
        }
    }

    func makeQuery() throws -> ContactQuery {
        var query = ContactQuery()
        query.email = email
        query.externalID = externalID
        query.role = role
        query.nameContains = nameContains
        query.search = search
        query.updatedSince = updatedSince.flatMap(UnixTime.parse)
        query.updatedBefore = updatedBefore.flatMap(UnixTime.parse)
        var chosen = Set(states)
        if pending { chosen.insert(.pending) }
        if chosen.isEmpty {
            chosen = [.synced, .pending]
            if includeTombstoned { chosen.insert(.tombstoned) }
        } else if includeTombstoned {
            chosen.insert(.tombstoned)
        }
        query.states = chosen
        if archived {
            query.archivedOnly = true
            query.states = [.tombstoned]
        }
        for attribute in attributes {
            let parts = attribute.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            query.customAttributes[String(parts[0])] = JSONValue(commandLineValue: String(parts[1]))
        }
        query.tags = tag
        query.anyTags = anyTag
        query.companies = company
        query.segments = segment
        let descending = order.map { $0 == .desc } ?? (sort == .updatedAt)
        query.sort = ContactSort(sort, descending: descending)
        query.limit = limit
        query.cursor = try after.map(ContactCursor.init(token:))
        return query
    }

    func run() async throws {
        var query = try makeQuery()
        let store = try await mirror.facade(.readOnly)
        if !query.segments.isEmpty, try await !store.keepsSegmentMemberships() {
            throw CommandFailure(
                "the mirror does not keep segment memberships yet: run `intercom-sync sync --segments` once, "
                    + "and every later sync keeps them current")
        }
        for missing in try await store.unknownNames(in: query) {
            Output.note("The mirror knows no \(missing): `intercom-sync tags list` and `companies list` show what it has.")
        }
        var collected: [StoredContact] = []
        var wroteHeader = false
        while true {
            let page = try await store.contacts(matching: query)
            switch format {
            case .ndjson:
                page.contacts.forEach { Output.data(ContactRenderer.jsonLine($0)) }
            case .csv:
                if !wroteHeader { Output.data(ContactRenderer.csvColumns.joined(separator: ",")) }
                page.contacts.forEach { Output.data(ContactRenderer.csvRow($0)) }
            case .json, .table:
                collected += page.contacts
            }
            wroteHeader = true
            guard all, let next = page.nextCursor else {
                let edited =
                    format == .table ? try await store.editedContactIDs(among: collected.map(\.contact.id)) : []
                finish(collected, edited: edited, nextCursor: all ? nil : page.nextCursor?.token)
                return
            }
            query.cursor = next
        }
    }

    private func finish(_ contacts: [StoredContact], edited: Set<String>, nextCursor: String?) {
        switch format {
        case .json:
            Output.data(ContactRenderer.jsonDocument(contacts, nextCursor: nextCursor))
            return
        case .table where contacts.isEmpty:
            Output.note("No contacts match.")
        case .table:
            Output.line(ContactRenderer.table(contacts, edited: edited))
        case .ndjson, .csv:
            break  // Already streamed page by page.
        }
        if let nextCursor {
            Output.note("More contacts match: add --after \(nextCursor) (or --all).")
        }
    }
}

extension ContactRole: ExpressibleByArgument {}
extension ContactState: ExpressibleByArgument {}
extension ContactSort.Field: ExpressibleByArgument {}
extension ContactRenderer.Format: ExpressibleByArgument {}
