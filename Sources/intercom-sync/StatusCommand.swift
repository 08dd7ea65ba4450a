import ArgumentParser
import Foundation
import IntercomSync

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show what the mirror holds, what waits to be pushed, and when it last synced.",
        discussion: """
            Counts what the mirror holds now, also while a sync or an import is loading it \
            (the counts are then what it has committed so far, and "now" says so). A full pull \
            that was stopped part-way is reported as interrupted: the next `sync` resumes it. \
            Where there is no mirror yet, it says so and exits 0 (in --json, "exists": false).

            Examples:
              intercom-sync status
              intercom-sync status --json | jq .contacts.pending
            """
    )

    @OptionGroup var mirror: MirrorOptions

    @Flag(help: "Print the status as one JSON object.")
    var json = false

    func run() async throws {
        let status: MirrorStatus
        do {
            status = try await mirror.facade(.readOnly).status()
        } catch let error as MirrorError
            where error.kind == .missingMirror || (error.kind == .missingDirectory && mirror.path == nil)
        {
            // A fresh machine: nothing to show, which is no failure. A folder named with --db
            // that does not exist is still an error: most likely a typo.
            if json {
                Output.data(try Self.json(MirrorStatus(path: mirror.resolvedPath), exists: false))
            } else {
                Output.line("mirror             none yet at \(mirror.resolvedPath)")
                Output.line("                   run `intercom-sync sync` to make it")
            }
            return
        }
        if json {
            Output.data(try Self.json(status, exists: true))
            return
        }
        func when(_ time: Int?) -> String { time.map(UnixTime.iso8601) ?? "never" }
        let contactStates = ContactState.allCases.map { "\($0.rawValue) \(status.contacts[$0])" }
        let outboxStates = OutboxState.allCases.map { "\($0.rawValue) \(status.outbox[$0])" }
        Output.line("mirror             \(mirror.resolvedPath)")
        Output.line("contacts           \(contactStates.joined(separator: ", "))")
        Output.line("outbox             \(outboxStates.joined(separator: ", "))")
        Output.line("last full pull     \(when(status.lastFullPullAt))")
        Output.line("last incremental   \(when(status.lastIncrementalPullAt))")
        Output.line("last reconcile     \(when(status.lastReconcileAt))")
        let pull = status.lastFullPullAt == nil ? "first pull" : "full pull"
        switch status.fullPull {
        case .inProgress?:
            Output.line("now                a \(pull) is in progress; the counts are what it has committed so far")
        case .interrupted?:
            Output.line("now                the \(pull) was interrupted; run `intercom-sync sync` to resume it")
        case nil:
            break
        }
        if let busy = status.busyWith, status.fullPull != .inProgress {
            Output.line("busy               \(busy)")
        }
    }

    /// The status as one JSON object: every key, a missing value as null, and `exists`.
    static func json(_ status: MirrorStatus, exists: Bool) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var object = try JSONValue(jsonText: String(decoding: try encoder.encode(status), as: UTF8.self))
        if case .object(var fields) = object {
            fields["exists"] = .bool(exists)
            object = .object(fields)
        }
        return object.jsonText
    }
}
