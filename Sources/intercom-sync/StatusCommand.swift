import ArgumentParser
import Foundation
import IntercomSync

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show what the mirror holds, what waits to be pushed, and when it last synced.",
        discussion: """
            Examples:
              intercom-sync status
              intercom-sync status --json | jq .contacts.pending
            """
    )

    @OptionGroup var mirror: MirrorOptions

    @Flag(help: "Print the status as one JSON object.")
    var json = false

    func run() async throws {
        let status = try await mirror.facade(.readOnly).status()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            Output.data(String(decoding: try encoder.encode(status), as: UTF8.self))
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
    }
}
