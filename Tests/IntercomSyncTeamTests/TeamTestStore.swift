import Foundation
import IntercomSync
import IntercomSyncTeam
import Logging
import PostgresNIO
import Testing

/// The PostgreSQL cluster the team store's tests run against: `scripts/test` starts a
/// throwaway one (`scripts/postgres start`) and names it in `INTERCOM_SYNC_TEST_STORE`. Each
/// test takes a database of its own, made from that URL, so tests never see each other's rows.
enum TeamTestStore {
    static let environment = ProcessInfo.processInfo.environment

    /// The cluster's URL, when one is running for the tests.
    static let url: TeamStoreURL? = environment["INTERCOM_SYNC_TEST_STORE"].flatMap { try? TeamStoreURL($0) }

    /// Why the tests that need PostgreSQL did not run, for the test report.
    static let missing: Comment =
        "INTERCOM_SYNC_TEST_STORE is not set: scripts/test starts a PostgreSQL cluster for these tests"

    /// A new, empty database on the test cluster, and its URL.
    static func freshDatabase(_ name: String = #function) async throws -> TeamStoreURL {
        guard var url else { throw TeamStoreError(.badURL, "\(missing)") }
        let database =
            "t_" + name.lowercased().filter { $0.isLetter || $0.isNumber }.prefix(30) + "_"
            + String(UInt32.random(in: 0...UInt32.max), radix: 36)
        try await admin(url) { connection in
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(database)"), logger: logger)
        }
        url.database = database
        return url
    }

    static let logger = Logger(label: "team-tests", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Runs `body` on a plain connection to the cluster's test database (or `url`'s).
    static func admin<T>(_ url: TeamStoreURL, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        let configuration = PostgresConnection.Configuration(
            host: url.host, port: url.port, username: url.username, password: url.password, database: url.database,
            tls: .disable)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        do {
            let result = try await body(connection)
            try await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Restarts the cluster at once, as a crash would (`scripts/postgres restart`). Spawned and
    /// reaped by hand, off the cooperative pool: PostgreSQL, which the script starts again,
    /// keeps what it inherits open, and `Process` waits for that too.
    static func restartCluster() async throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/postgres").path
        let status = await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
            DispatchQueue.global().async {
                var pid: pid_t = 0
                let arguments = ["/bin/bash", script, "restart"]
                var argv = arguments.map { strdup($0) } + [nil]
                defer { argv.forEach { free($0) } }
                var actions = posix_spawn_file_actions_t()
                posix_spawn_file_actions_init(&actions)
                defer { posix_spawn_file_actions_destroy(&actions) }
                for descriptor: Int32 in [1, 2] {
                    posix_spawn_file_actions_addopen(&actions, descriptor, "/dev/null", O_WRONLY, 0)
                }
                guard posix_spawn(&pid, "/bin/bash", &actions, nil, &argv, environ) == 0 else {
                    continuation.resume(returning: -1)
                    return
                }
                var waited: Int32 = 0
                while waitpid(pid, &waited, 0) == -1 && errno == EINTR {}
                continuation.resume(returning: (waited >> 8) & 0xFF)
            }
        }
        guard status == 0 else { throw TeamStoreError(.storage, "scripts/postgres restart exited \(status)") }
    }
}
