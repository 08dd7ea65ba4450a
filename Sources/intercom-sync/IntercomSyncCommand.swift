import ArgumentParser
import Foundation
import IntercomSync
import IntercomSyncTeam

@main
struct IntercomSyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "intercom-sync",
        abstract: "An offline-first mirror of an Intercom workspace's contacts.",
        discussion: """
            intercom-sync keeps a local SQLite mirror of your Intercom contacts, so you can query \
            them without a network, and stages new contacts and messages in an outbox that \
            `outbox flush` sends exactly once. Exit codes: 0 ok, 1 failure, 2 usage error or \
            invalid input, 3 a flush left failed, unknown or conflicting entries (or an import \
            rejected rows), 4 Intercom could not be reached, kept rate-limiting, kept answering \
            with server errors, or kept a walk from moving forward (nothing is lost: run the \
            command again later), 5 \
            the mirror is busy with another sync, import or flush.

            Examples:
              intercom-sync demo
              intercom-sync auth login --client-id 4f2… --client-secret "$SECRET"
              intercom-sync sync
              intercom-sync contacts query --search "ana lo" --limit 5
              intercom-sync contacts get 6762f0d01bb69f9f2193bb7d --offline
              intercom-sync contacts create --email ann@example.com --name "Ann O'Neil"
              intercom-sync messages send --to ann@example.com --body "Welcome aboard"
              intercom-sync contacts import leads.csv --errors rejected.csv
              intercom-sync outbox flush
              intercom-sync status --json
              intercom-sync sim --seed-contacts 1000
            """,
        version: "intercom-sync \(IntercomSyncVersion.description)",
        subcommands: [
            AuthCommand.self, SyncCommand.self, ContactsCommand.self, MessagesCommand.self, OutboxCommand.self,
            TagsCommand.self, CompaniesCommand.self, SegmentsCommand.self, StatusCommand.self, DoctorCommand.self,
            SimCommand.self, DemoCommand.self, GenerateCommand.self,
        ]
    )

    /// Parses, runs, and maps every error to one line on stderr and the documented exit code.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exitReporting(error)
        }
    }

    static func exitReporting(_ error: any Error) -> Never {
        let code = exitCode(for: error)
        if code == .success {
            exit(withError: error)  // --help, --version
        }
        if code == .validationFailure {
            // ArgumentParser lists the values a flag takes on the lines after a colon.
            let lines = message(for: error).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            var message = lines.first ?? "invalid usage"
            if message.hasSuffix(":"), lines.count > 1 {
                message +=
                    " "
                    + lines.dropFirst().map { $0.hasPrefix("- ") ? String($0.dropFirst(2)) : $0 }
                    .joined(separator: ", ")
            }
            Output.note("error: \(message) (see --help)")
            Foundation.exit(2)
        }
        switch error {
        case let error as ExitCode:
            Foundation.exit(error.rawValue)
        case let error as QueryError:
            Output.note("error: \(Advice.explained(error))")
            Foundation.exit(2)
        case let error as DraftError:
            Output.note("error: \(Advice.explained(error))")
            Foundation.exit(2)
        case let error as IntercomError where error.isNoAnswer:
            Output.note("error: Intercom could not be reached: \(Advice.explained(error))")
            Foundation.exit(4)
        case let error as IntercomError where error.kind == .transient && (error.status ?? 0) >= 500:
            Output.note("error: Intercom kept answering with server errors: \(Advice.explained(error))")
            Foundation.exit(4)
        case let error as TeamStoreError where error.kind == .unreachable:
            Output.note("error: \(Advice.explained(error))")
            Foundation.exit(4)
        case let error as IntercomError where error.isRateLimited:
            Output.note("error: Intercom kept answering 429 (rate limited): \(Advice.explained(error))")
            Foundation.exit(4)
        case let error as SyncError where error.kind == .stalledWalk:
            Output.note("error: \(Advice.explained(error))")
            Foundation.exit(4)
        case let error as SyncError where error.kind == .busy:
            Output.note("error: \(Advice.explained(error))")
            Foundation.exit(5)
        case let error as MirrorError where error.kind == .busy:
            Output.note("error: \(Advice.explained(error))")
            Foundation.exit(5)
        case let error as ImportError where error.kind == .badMapping:
            // A --map that fits no column is a usage error, known only once the header is read.
            Output.note("error: \(Advice.explained(error)) (see --help)")
            Foundation.exit(2)
        default:
            Output.note("error: \(Advice.explained(error))")
            Foundation.exit(1)
        }
    }
}
