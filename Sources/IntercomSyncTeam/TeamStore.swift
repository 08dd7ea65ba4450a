import Foundation
import IntercomSync
import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import Synchronization

/// The team's Intercom replica and outbox, in PostgreSQL.
///
/// Opening a store migrates its schema, once however many processes open it at the same
/// moment (an advisory lock), and refuses a store a newer intercom-sync wrote. Each operation
/// runs on a connection of its own, taken from those it keeps idle or opened for it, so
/// concurrent calls never share a transaction. A connection lost to a restarted or briefly
/// unreachable PostgreSQL is opened again, and the operation retried, for as long as
/// `reconnectPatience` lasts: every operation is written so that running it twice after a lost
/// answer changes nothing more than running it once.
public actor TeamStore {
    public nonisolated let url: TeamStoreURL
    nonisolated let logger: Logger
    private let reconnectPatience: Duration
    private var idle: [WatchedConnection] = []
    private var nextConnectionID = 1
    private var closed = false
    /// Descriptions of operations whose next commit loses its answer, for the tests of a lost
    /// answer (`loseNextCommitAnswer(of:)`): read under a lock, with no hop to the actor.
    private nonisolated let answersToLose = Mutex<[String]>([])

    /// Opens the store at `url`, migrating its schema when it is new or older. With `creating`
    /// false, a database that holds no team store is refused (`notAStore`) and left as it is:
    /// an agent that follows a store never makes one where a mistyped URL points.
    public static func open(
        _ url: TeamStoreURL, reconnectPatience: Duration = .seconds(30), creating: Bool = true,
        logger: Logger = Logger(label: "intercom-sync.team", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> TeamStore {
        let store = TeamStore(url: url, reconnectPatience: reconnectPatience, logger: logger)
        do {
            try await store.migrate(creating: creating)
        } catch {
            await store.close()
            throw error
        }
        return store
    }

    private init(url: TeamStoreURL, reconnectPatience: Duration, logger: Logger) {
        self.url = url
        self.reconnectPatience = reconnectPatience
        self.logger = logger
    }

    deinit {
        // A store dropped without `close()` still closes its connections.
        // Each connection is kept alive by its own close, until that completes.
        for watched in idle {
            let connection = watched.connection
            connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
        }
    }

    /// Closes the store's connections. Operations after it fail.
    public func close() async {
        closed = true
        let connections = idle
        idle = []
        for watched in connections { try? await watched.connection.close() }
    }

    /// The schema version of the store and the intercom-sync that last migrated it.
    public func schemaVersion() async throws -> (version: Int, writtenBy: String) {
        try await run("reading the schema version") { connection in
            for try await (version, writer) in try await connection.query(
                "SELECT version, written_by FROM team_schema", logger: self.logger
            ).decode((Int, String).self) {
                return (version, writer)
            }
            return (0, "")
        }
    }

    // MARK: Schema

    private func migrate(creating: Bool) async throws {
        try await transaction("migrating the schema") { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(TeamSchema.migrationLock))", logger: self.logger)
            if !creating {
                var exists = false
                for try await found in try await connection.query(
                    "SELECT to_regclass('team_schema') IS NOT NULL", logger: self.logger
                ).decode(Bool.self) {
                    exists = found
                }
                guard exists else {
                    throw TeamStoreError(
                        .notAStore,
                        "\(self.url) holds no team store (no team_schema table): nothing was written there. Check the "
                            + "URL's database; a team store is made by its puller's first `intercom-sync sync --store`")
                }
            }
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS team_schema (
                    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
                    version INTEGER NOT NULL,
                    written_by TEXT NOT NULL
                )
                """, logger: self.logger)
            var version = 0
            var writer = ""
            for try await (found, by) in try await connection.query(
                "SELECT version, written_by FROM team_schema", logger: self.logger
            ).decode((Int, String).self) {
                version = found
                writer = by
            }
            guard version <= TeamSchema.version else {
                throw TeamStoreError(
                    .newerSchema,
                    "the team store \(self.url) has schema version \(version), written by intercom-sync \(writer); "
                        + "this intercom-sync (\(IntercomSyncVersion.library)) knows versions up to "
                        + "\(TeamSchema.version): use a newer intercom-sync", remedy: .upgrade)
            }
            guard version < TeamSchema.version else { return }
            for migration in TeamSchema.migrations.dropFirst(version) {
                for statement in migration {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                }
            }
            try await connection.query(
                """
                INSERT INTO team_schema (version, written_by) VALUES (\(TeamSchema.version), \(IntercomSyncVersion.library))
                ON CONFLICT (singleton) DO UPDATE SET version = excluded.version, written_by = excluded.written_by
                """, logger: self.logger)
        }
    }

    // MARK: Connections

    /// Runs `body` in one transaction, retried on a new connection when the connection is lost.
    /// The transaction first takes the lock writers commit under (`TeamSchema.changeLock`),
    /// before any row, so that no two writers wait on each other.
    func transaction<T: Sendable>(
        _ doing: String, _ body: @Sendable @escaping (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await run(doing) { connection in
            try await connection.query("BEGIN", logger: self.logger)
            do {
                try await connection.query("SELECT pg_advisory_xact_lock(\(TeamSchema.changeLock))", logger: self.logger)
                let result = try await body(connection)
                try await connection.query("COMMIT", logger: self.logger)
                if self.losesAnswer(doing) {
                    try? await connection.close()
                    throw ConnectionClosed()
                }
                return result
            } catch {
                // A connection that went away took its transaction with it.
                if !Self.isGone(connection, after: error) {
                    _ = try? await connection.query("ROLLBACK", logger: self.logger)
                }
                throw error
            }
        }
    }

    /// Runs `body` on a connection of its own. A lost connection is opened again and `body`
    /// run again until `reconnectPatience` runs out; any other failure is translated once.
    func run<T: Sendable>(
        _ doing: String, _ body: @Sendable @escaping (PostgresConnection) async throws -> T
    ) async throws -> T {
        let started = ContinuousClock.now
        var delay = Duration.milliseconds(100)
        while true {
            guard !closed else { throw TeamStoreError(.storage, "the team store \(url) was closed") }
            let connection: WatchedConnection
            do {
                connection = try await take()
            } catch {
                let failure = Self.translate(error, url: url, doing: doing)
                guard failure.kind == .unreachable, ContinuousClock.now - started + delay < reconnectPatience else {
                    throw failure
                }
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
                continue
            }
            do {
                let result = try await connection.whileOpen(body)
                await putBack(connection)
                return result
            } catch let error as TeamStoreError {
                await putBack(connection)
                throw error
            } catch {
                let lost = Self.isConnectionLoss(error) || connection.isClosed
                if lost {
                    try? await connection.close()
                } else {
                    await putBack(connection)
                }
                guard lost, ContinuousClock.now - started + delay < reconnectPatience else {
                    throw Self.translate(error, url: url, doing: doing)
                }
                logger.info("the team store's connection was lost while \(doing); trying again")
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
            }
        }
    }

    /// Makes the next transaction whose description starts with `prefix` lose its answer
    /// after it committed, as a connection cut at that moment would: for the tests of
    /// operations tried again after a lost answer.
    package func loseNextCommitAnswer(of prefix: String) {
        answersToLose.withLock { $0.append(prefix) }
    }

    private nonisolated func losesAnswer(_ doing: String) -> Bool {
        answersToLose.withLock { prefixes in
            guard let index = prefixes.firstIndex(where: { doing.hasPrefix($0) }) else { return false }
            prefixes.remove(at: index)
            return true
        }
    }

    // MARK: The puller

    /// Takes the team's one puller's place, as `holder`: a session lock on a connection kept
    /// for it, released when the lease is (or when the process ends, since PostgreSQL drops a
    /// session's locks with it). Another puller holding it is refused with `busy`, naming it,
    /// after `seconds` of waiting.
    public func holdPuller(as holder: String, waiting seconds: Double = 0) async throws -> PullerLease {
        switch try await lockPuller(as: holder, waiting: seconds) {
        case .taken(let connection):
            return PullerLease(store: self, holder: holder, connection: connection)
        case .heldBy(let current):
            throw TeamStoreError(
                .busy, "the team store \(url) is being pulled by \(current): one puller at a time (--wait to wait for it)")
        }
    }

    enum PullerLock: Sendable {
        /// The lock, held by the session of this connection.
        case taken(PostgresConnection)
        /// Who holds it, and since when.
        case heldBy(String)
    }

    private func lockPuller(as holder: String, waiting seconds: Double) async throws -> PullerLock {
        let watched: WatchedConnection
        do {
            watched = try await take()
        } catch {
            throw Self.translate(error, url: url, doing: "connecting for the puller")
        }
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        let logger = self.logger
        let connection = watched.connection
        do {
            let holding = try await watched.whileOpen { connection -> String? in
                while true {
                    var taken = false
                    for try await granted in try await connection.query(
                        "SELECT pg_try_advisory_lock(\(TeamSchema.pullerLock))", logger: logger
                    ).decode(Bool.self) {
                        taken = granted
                    }
                    if taken {
                        try await connection.query(
                            """
                            INSERT INTO team_puller (holder) VALUES (\(holder))
                            ON CONFLICT (singleton) DO UPDATE SET holder = excluded.holder, since = now()
                            """, logger: logger)
                        return nil
                    }
                    guard ContinuousClock.now < deadline else { break }
                    try await Task.sleep(for: .milliseconds(500))
                }
                var current = "another puller"
                for try await (name, since) in try await connection.query(
                    "SELECT holder, to_char(since, 'YYYY-MM-DD\"T\"HH24:MI:SSOF') FROM team_puller", logger: logger
                ).decode((String, String).self) {
                    current = "\(name), since \(since)"
                }
                return current
            }
            guard let holding else { return .taken(connection) }
            try? await connection.close()
            return .heldBy(holding)
        } catch {
            try? await connection.close()
            throw Self.translate(error, url: url, doing: "taking the puller's lock")
        }
    }

    /// The puller's lock taken again by `holder` after its session ended, on a new connection
    /// made with the store's patience; or who took it meanwhile.
    func retakePuller(as holder: String) async throws -> PullerLock {
        let started = ContinuousClock.now
        var delay = Duration.milliseconds(100)
        while true {
            do {
                return try await lockPuller(as: holder, waiting: 0)
            } catch let error as TeamStoreError where error.kind == .unreachable {
                guard !closed, ContinuousClock.now - started + delay < reconnectPatience else { throw error }
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
            }
        }
    }

    /// Keeps a connection for the next operation, or closes it when the store was closed
    /// meanwhile.
    private func putBack(_ connection: WatchedConnection) async {
        if closed {
            try? await connection.connection.close()
        } else {
            idle.append(connection)
        }
    }

    private func take() async throws -> WatchedConnection {
        while let connection = idle.popLast() {
            if !connection.isClosed { return connection }
        }
        var configuration: PostgresConnection.Configuration
        if let folder = url.socketFolder {
            configuration = PostgresConnection.Configuration(
                unixSocketPath: folder + "/.s.PGSQL.\(url.port)", username: url.username, password: url.password,
                database: url.database)
        } else {
            configuration = PostgresConnection.Configuration(
                host: url.host, port: url.port, username: url.username, password: url.password, database: url.database,
                tls: try Self.tls(for: url.sslMode))
        }
        configuration.options.connectTimeout = .seconds(10)
        let id = nextConnectionID
        nextConnectionID += 1
        let connection = WatchedConnection(
            try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger))
        // A client frozen inside a transaction (stopped, cut off) would hold the writers' lock
        // for as long as TCP takes to notice: PostgreSQL ends its session after a minute.
        do {
            let logger = self.logger
            try await connection.whileOpen { connection in
                try await connection.query("SET idle_in_transaction_session_timeout = '60s'", logger: logger)
            }
        } catch {
            try? await connection.connection.close()
            throw error
        }
        return connection
    }

    private static func tls(for mode: TeamStoreURL.SSLMode) throws -> PostgresConnection.Configuration.TLS {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch mode {
        case .disable: return .disable
        case .prefer, .require: configuration.certificateVerification = .none
        case .verifyCA: configuration.certificateVerification = .noHostnameVerification
        case .verifyFull: configuration.certificateVerification = .fullVerification
        }
        let context = try NIOSSLContext(configuration: configuration)
        return mode == .prefer ? .prefer(context) : .require(context)
    }

    // MARK: Errors

    /// Whether `connection` is closed or going, after `error`: nothing more can be asked of it,
    /// and a transaction it held is over. Any other failure leaves a transaction to roll back.
    static func isGone(_ connection: PostgresConnection, after error: any Error) -> Bool {
        if connection.isClosed || error is ConnectionClosed { return true }
        guard let error = error as? PSQLError else { return false }
        return isConnectionLoss(error)
    }

    /// Whether the error says the connection is gone (PostgreSQL stopped, restarted or cut it),
    /// rather than that the statement failed.
    static func isConnectionLoss(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError else { return !(error is PostgresDecodingError) }
        switch error.code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown:
            return true
        case .server:
            // admin_shutdown, crash_shutdown, cannot_connect_now: a restart.
            return ["57P01", "57P02", "57P03"].contains(error.serverInfo?[.sqlState] ?? "")
        default:
            return false
        }
    }

    /// The error as a `TeamStoreError` that names the store by its redacted URL and says what
    /// failed, in PostgreSQL's own words where it gave some.
    static func translate(_ error: any Error, url: TeamStoreURL, doing: String) -> TeamStoreError {
        if let error = error as? TeamStoreError { return error }
        guard let error = error as? PSQLError else {
            return TeamStoreError(
                .unreachable, "the team store \(url) could not be reached while \(doing): \(Self.plain(error))")
        }
        let state = error.serverInfo?[.sqlState] ?? ""
        let message = error.serverInfo?[.message] ?? ""
        switch error.code {
        case .server where state.hasPrefix("28"):
            return TeamStoreError(
                .authentication, "the team store \(url) refused the login of \(url.username): \(message)")
        case .server where isConnectionLoss(error):
            return TeamStoreError(.unreachable, "the team store \(url) went away while \(doing): \(message)")
        case .server:
            return TeamStoreError(
                .storage, "the team store \(url) refused \(doing): \(message) (SQLSTATE \(state))")
        case .sslUnsupported:
            return TeamStoreError(
                .unreachable, "the team store \(url) does not offer TLS, which sslmode=\(url.sslMode.rawValue) requires")
        case .authMechanismRequiresPassword:
            return TeamStoreError(
                .authentication, "the team store \(url) asks for a password, and the URL gives none: give it in PGPASSWORD")
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown:
            let cause = error.underlying.map { ": \(Self.plain($0))" } ?? ""
            return TeamStoreError(.unreachable, "the team store \(url) could not be reached while \(doing)\(cause)")
        default:
            return TeamStoreError(.storage, "the team store \(url) failed while \(doing) (\(error.code))")
        }
    }

    /// An error's description, for messages: never one that could carry a password, since the
    /// errors translated here come from the network layer and the server.
    private static func plain(_ error: any Error) -> String {
        "\(error)"
    }
}

/// The team's puller's place, held by a session lock on a connection of its own.
///
/// PostgreSQL drops a session's locks with the session: a restart, or a connection cut, frees
/// the place for anyone. While `keep(onLost:)` watches it, the lease takes the lock again on a
/// new connection as soon as one can be made, and says so when another puller took it first.
public final class PullerLease: Sendable {
    private let store: TeamStore
    private let holder: String
    private let state: Mutex<State>

    private struct State {
        var connection: PostgresConnection
        var released = false
        var keeping: Task<Void, Never>?
    }

    init(store: TeamStore, holder: String, connection: PostgresConnection) {
        self.store = store
        self.holder = holder
        state = Mutex(State(connection: connection))
    }

    /// Takes the lock again each time its connection closes, until `release()`; calls
    /// `onLost` with who holds the place when another puller took it meanwhile, and stops.
    public func keep(onLost: @escaping @Sendable (String) -> Void) {
        let task = Task { [weak self, store, holder] in
            while true {
                guard let connection = self?.state.withLock({ $0.released ? nil : $0.connection }) else { return }
                try? await connection.closeFuture.get()
                guard self?.state.withLock({ $0.released }) == false else { return }
                do {
                    switch try await store.retakePuller(as: holder) {
                    case .taken(let connection):
                        let kept = self?.state.withLock { state in
                            guard !state.released else { return false }
                            state.connection = connection
                            return true
                        }
                        if kept != true { try? await connection.close() }
                    case .heldBy(let other):
                        onLost(other)
                        return
                    }
                } catch {
                    // The store is closed, or out of reach for longer than its patience: the
                    // pull's own writes to it fail and say so.
                    return
                }
            }
        }
        state.withLock { $0.keeping = task }
    }

    /// Gives the place up.
    public func release() async {
        let (connection, keeping) = state.withLock { state in
            state.released = true
            return (state.connection, state.keeping)
        }
        keeping?.cancel()
        try? await connection.close()
    }

    deinit {
        let connection = state.withLock { $0.connection }
        connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
    }
}
