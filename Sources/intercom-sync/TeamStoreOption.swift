import ArgumentParser
import Foundation
import IntercomSyncTeam

/// Reaching a team's store in PostgreSQL from a command.
enum TeamStoreAccess {
    /// The store named by `given`, else by the environment variable `variable`, with the
    /// password from the URL or else PGPASSWORD (never printed: `TeamStoreURL` redacts it).
    static func url(_ given: String?, variable: String, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws -> TeamStoreURL?
    {
        guard let text = given ?? environment[variable].flatMap({ $0.isEmpty ? nil : $0 }) else { return nil }
        var url = try TeamStoreURL(text)
        if url.password == nil { url.password = environment["PGPASSWORD"] }
        return url
    }

    /// Opens the store; one out of reach for longer than `patience` exits 4, as Intercom out of
    /// reach does.
    /// `creating` false for an agent, which follows or pushes to a store and never makes one.
    static func open(_ url: TeamStoreURL, patience: Duration, creating: Bool = true) async throws -> TeamStore {
        do {
            return try await TeamStore.open(url, reconnectPatience: patience, creating: creating)
        } catch let error as TeamStoreError where error.kind == .unreachable {
            Output.note("error: \(error.description)")
            throw ExitCode(4)
        }
    }
}
