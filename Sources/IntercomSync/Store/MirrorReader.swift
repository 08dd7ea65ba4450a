import Foundation
import GRDB
import GRDBSQLite

/// A read-only SQLite connection of the mirror's own for queries, with its statements prepared
/// once: a point lookup then costs about what SQLite does, where a read through the pool adds a
/// dispatch, a pool checkout and a transaction around a single statement (more than the lookup).
///
/// A query of one statement runs in autocommit mode, which reads one consistent snapshot; one of
/// several runs them in a transaction. Either way it ends as soon as its rows are read, so it
/// never holds the WAL back. The connection serves one query at a time: a caller that finds it
/// busy goes through the pool instead (`tryRead`).
final class MirrorReader: @unchecked Sendable {
    private let path: String
    private let lock = NSLock()
    /// Guarded by `lock`, like everything below.
    private var connection: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]
    private var closed = false

    /// Prepared statements kept at most.
    static let maximumStatements = 64

    init(path: String) {
        self.path = path
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        if let connection { sqlite3_close_v2(connection) }
    }

    /// Runs `body` on the connection, or returns nil when another query holds it. With
    /// `snapshot`, its statements read inside one transaction, so they see one state of the mirror.
    /// SQLite's failures leave it as `MirrorError`s, as the store's writer's do (`StoreWriter`).
    func tryRead<T>(snapshot: Bool, _ body: (Session) throws -> T) throws -> T? {
        do {
            return try tryReadReportingSQLite(snapshot: snapshot, body)
        } catch let error as DatabaseError {
            throw MirrorError(error, path: path)
        }
    }

    /// `tryRead`, its failures SQLite's own (`inspection` tells a `-shm` it cannot make apart).
    private func tryReadReportingSQLite<T>(snapshot: Bool, _ body: (Session) throws -> T) throws -> T? {
        guard lock.try() else { return nil }
        defer { lock.unlock() }
        let session = Session(reader: self)
        guard snapshot else { return try body(session) }
        let connection = try open()
        try check(sqlite3_exec(connection, "BEGIN", nil, nil, nil), sql: "BEGIN")
        defer { sqlite3_exec(connection, "COMMIT", nil, nil, nil) }
        return try body(session)
    }

    /// What a read-only open checks of the file, read in one transaction.
    struct Inspection {
        var applicationID: Int64
        /// The migrations applied (GRDB's `grdb_migrations`).
        var migrations: Set<String>
        /// "type name" → normalized SQL, as `ContactMirror.schemaObjects` reads them.
        var schema: [String: String]
        /// Whether a load left indexes or full-text entries to build.
        var deferredIndexing: Bool
    }

    /// Reads what a read-only open checks. Throws what SQLite reports, such as `SQLITE_CANTOPEN`
    /// for a WAL file whose `-shm` this user cannot create, or an error for a file that is not
    /// a mirror.
    func inspection() throws -> Inspection {
        let found = try tryReadReportingSQLite(snapshot: true) { session -> Inspection in
            var migrations: Set<String> = []
            try session.rows(PlannedStatement(sql: "SELECT identifier FROM grdb_migrations", values: [])) { row in
                if let identifier = row.string(0) { migrations.insert(identifier) }
            }
            var schema: [String: String] = [:]
            try session.rows(PlannedStatement(sql: ContactMirror.schemaObjectsSQL, values: [])) { row in
                if let name = row.string(0), let sql = row.string(1) { schema[name] = ContactMirror.normalizedSQL(sql) }
            }
            return Inspection(
                applicationID: try session.integer(PlannedStatement(sql: "PRAGMA application_id", values: [])),
                migrations: migrations, schema: schema,
                deferredIndexing: try session.integer(
                    PlannedStatement(sql: ContactMirror.deferredIndexingSQL, values: [])) != 0)
        }
        guard let found else { throw DatabaseError(resultCode: .SQLITE_BUSY, message: "the query connection is busy") }
        return found
    }

    /// The connection while `tryRead` holds it.
    struct Session: QueryRunner {
        fileprivate let reader: MirrorReader

        /// Runs a statement, handing each row to `read`.
        func rows(_ statement: PlannedStatement, _ read: (RawRow) throws -> Void) throws {
            try reader.run(statement, read)
        }

        func contacts(_ statement: PlannedStatement) throws -> [StoredContact] {
            var contacts: [StoredContact] = []
            try reader.run(statement) { columns in contacts.append(try StoredContact(columns: columns)) }
            return contacts
        }

        func integer(_ statement: PlannedStatement) throws -> Int64 {
            var value: Int64?
            try reader.run(statement) { columns in value = value ?? columns.int64(0) }
            return value ?? 0
        }
    }

    /// Runs a statement, handing each row to `read`; the caller holds `lock`.
    private func run(_ planned: PlannedStatement, _ read: (RawRow) throws -> Void) throws {
        let statement = try prepared(planned.sql)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        for (offset, value) in planned.values.enumerated() {
            try check(bind(value, at: Int32(offset + 1), in: statement), sql: planned.sql)
        }
        let columns = RawRow(handle: statement)
        while true {
            switch sqlite3_step(statement) {
            case SQLITE_ROW: try read(columns)
            case SQLITE_DONE: return
            case let code: try check(code, sql: planned.sql)
            }
        }
    }

    /// How many statements are prepared now.
    var preparedCount: Int { lock.withLock { statements.count } }

    /// Closes the connection for good.
    func close() {
        lock.withLock {
            closed = true
            for statement in statements.values { sqlite3_finalize(statement) }
            statements.removeAll()
            if let connection { sqlite3_close_v2(connection) }
            connection = nil
        }
    }

    private func prepared(_ sql: String) throws -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        if statements.count >= Self.maximumStatements {
            // A long-lived process may ask many shapes of query: start over rather than grow.
            for statement in statements.values { sqlite3_finalize(statement) }
            statements.removeAll()
        }
        let connection = try open()
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v3(connection, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard code == SQLITE_OK, let statement else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message(), sql: sql)
        }
        statements[sql] = statement
        return statement
    }

    private func open() throws -> OpaquePointer {
        if let connection { return connection }
        guard !closed else { throw DatabaseError(resultCode: .SQLITE_MISUSE, message: "the mirror is closed") }
        var opened: OpaquePointer?
        let code = sqlite3_open_v2(path, &opened, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, nil)
        guard code == SQLITE_OK, let opened else {
            let text = opened.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let opened { sqlite3_close_v2(opened) }
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: text)
        }
        sqlite3_busy_timeout(opened, 10_000)
        ContactMirror.registerFunctions(on: opened)
        // The pool's page cache, but no memory map: cold point lookups measured slower with one
        // (page faults cost more than the reads they spare).
        sqlite3_exec(opened, "PRAGMA cache_size = \(ContactMirror.cacheSize)", nil, nil, nil)
        connection = opened
        return opened
    }

    private func bind(_ value: DatabaseValue, at index: Int32, in statement: OpaquePointer) -> Int32 {
        switch value.storage {
        case .null: return sqlite3_bind_null(statement, index)
        case .int64(let number): return sqlite3_bind_int64(statement, index, number)
        case .double(let number): return sqlite3_bind_double(statement, index, number)
        case .string(let text): return sqlite3_bind_text(statement, index, text, -1, SQLITE_TRANSIENT)
        case .blob(let data):
            return data.withUnsafeBytes { bytes in
                sqlite3_bind_blob(statement, index, bytes.baseAddress, Int32(bytes.count), SQLITE_TRANSIENT)
            }
        }
    }

    private func check(_ code: Int32, sql: String) throws {
        guard code != SQLITE_OK && code != SQLITE_ROW && code != SQLITE_DONE else { return }
        throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message(), sql: sql)
    }

    private func message() -> String {
        connection.map { String(cString: sqlite3_errmsg($0)) } ?? "no connection"
    }
}

/// SQLite's "copy this value now" destructor, which the C headers spell as a cast Swift cannot import.
let SQLITE_TRANSIENT = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
