import ArgumentParser
import CLISupport
import Foundation
import IntercomSync

/// `tags list`, `companies list` and `segments list`: what the mirror holds of each, offline.
struct TagsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tags", abstract: "The workspace's tags, from the mirror.", subcommands: [List.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List the tags, with how many contacts of the mirror carry each.",
            discussion: """
                The mirror reads the tag list at every sync. Filter contacts by tag with \
                `contacts query --tag NAME`.

                Examples:
                  intercom-sync tags list
                  intercom-sync tags list --json | jq '.[] | select(.contacts > 100) | .name'
                """)

        @OptionGroup var mirror: MirrorOptions

        @Flag(help: "Print a JSON array of {id, name, contacts}.")
        var json = false

        func run() async throws {
            let tags = try await mirror.facade(.readOnly).tags()
            if json { return Output.data(LinkListing.json(tags)) }
            guard !tags.isEmpty else { return Output.note("The mirror has no tags: run `intercom-sync sync`.") }
            Output.line(ContactRenderer.layout([["NAME", "CONTACTS", "ID"]] + tags.map { [$0.name, "\($0.contacts)", $0.id] }))
        }
    }
}

struct CompaniesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "companies", abstract: "The workspace's companies, from the mirror.", subcommands: [List.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List the companies, with how many contacts of the mirror belong to each.",
            discussion: """
                A full sync lists every company; an incremental one reads the companies contacts \
                were newly attached to. Filter contacts by company with `contacts query --company NAME`.

                Examples:
                  intercom-sync companies list --search acme
                  intercom-sync companies list --json | jq '.[] | {name, plan, contacts}'
                """)

        @OptionGroup var mirror: MirrorOptions

        @Option(help: "Only companies whose name, company_id or website contains this (case-insensitive).")
        var search: String?

        @Option(help: "Show at most this many.")
        var limit: Int?

        @Flag(help: "Print a JSON array of {id, companyID, name, plan, size, industry, website, monthlySpend, contacts}.")
        var json = false

        func validate() throws {
            if let limit, limit < 1 { throw ValidationError("--limit must be 1 or more, not \(limit).") }
        }

        func run() async throws {
            let companies = try await mirror.facade(.readOnly).companies(search: search, limit: limit ?? .max)
            if json { return Output.data(LinkListing.json(companies)) }
            guard !companies.isEmpty else {
                return Output.note(
                    search == nil ? "The mirror has no companies: run `intercom-sync sync`." : "No companies match.")
            }
            let rows = companies.map { company in
                [
                    company.name ?? "—", company.companyID ?? "—", company.plan ?? "—", company.size.map(String.init) ?? "—",
                    company.industry ?? "—", "\(company.contacts)", company.id,
                ]
            }
            Output.line(ContactRenderer.layout([["NAME", "COMPANY_ID", "PLAN", "SIZE", "INDUSTRY", "CONTACTS", "ID"]] + rows))
        }
    }
}

struct SegmentsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segments", abstract: "The workspace's segments, from the mirror.", subcommands: [List.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List the segments, with how many contacts of the mirror are in each.",
            discussion: """
                Intercom computes segments; the mirror keeps their members when synced with \
                `sync --segments` (a search page per 150 members of each segment, every sync). \
                Without it, the counts are 0.

                Examples:
                  intercom-sync segments list
                  intercom-sync segments list --json
                """)

        @OptionGroup var mirror: MirrorOptions

        @Flag(help: "Print a JSON array of {id, name, personType, contacts}.")
        var json = false

        func run() async throws {
            let store = try await mirror.facade(.readOnly)
            let segments = try await store.segments()
            if json { return Output.data(LinkListing.json(segments)) }
            guard !segments.isEmpty else { return Output.note("The mirror has no segments: run `intercom-sync sync`.") }
            Output.line(
                ContactRenderer.layout(
                    [["NAME", "CONTACTS", "PERSON_TYPE", "ID"]]
                        + segments.map { [$0.name, "\($0.contacts)", $0.personType ?? "—", $0.id] }))
            if try await !store.keepsSegmentMemberships() {
                Output.note("Memberships are not kept: `intercom-sync sync --segments` reads them.")
            }
        }
    }
}

enum LinkListing {
    static func json(_ items: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(items)) ?? Data("[]".utf8), as: UTF8.self)
    }
}
