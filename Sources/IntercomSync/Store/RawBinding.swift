import GRDB
import GRDBSQLite

/// Runs a statement GRDB prepared (and caches) with values bound through SQLite's C API: GRDB's
/// `StatementArguments` box every value, a cost a million imported or pulled rows notice. Unbound
/// parameters are NULL.
///
/// Texts are copied into an arena of the binding's own and bound in place (`SQLITE_STATIC`),
/// which stays untouched until the statement has run. Bound as transient, SQLite would allocate
/// and free a copy of each, under its allocator's mutex: for a million rows of ten texts, a
/// tenth of the writer's time.
struct RawBinding {
    private let statement: Statement
    private let arena = Arena()
    private var handle: SQLiteStatement { statement.sqliteStatement }

    init(_ statement: Statement) {
        self.statement = statement
    }

    func bind(_ index: Int32, _ text: String?) {
        guard var text else { return }
        text.withUTF8 { bytes in
            if let copy = arena.copy(UnsafeRawBufferPointer(bytes)) {
                _ = sqlite3_bind_text(handle, index, copy, Int32(bytes.count), nil)  // nil: SQLITE_STATIC
            } else {
                _ = sqlite3_bind_text(handle, index, bytes.baseAddress, Int32(bytes.count), SQLITE_TRANSIENT)
            }
        }
    }

    /// Binds bytes as a blob, copied into the arena (or as a transient copy when it is full).
    func bind(_ index: Int32, blob bytes: UnsafeRawBufferPointer) {
        if let copy = arena.copy(bytes) {
            _ = sqlite3_bind_blob(handle, index, copy, Int32(bytes.count), nil)  // nil: SQLITE_STATIC
        } else {
            _ = sqlite3_bind_blob(handle, index, bytes.baseAddress, Int32(bytes.count), SQLITE_TRANSIENT)
        }
    }

    func bind(_ index: Int32, _ number: Int64?) {
        guard let number else { return }
        sqlite3_bind_int64(handle, index, number)
    }

    func bind(_ index: Int32, _ number: Double) {
        sqlite3_bind_double(handle, index, number)
    }

    /// Runs a query and returns the first column of its first row as text (nil without a row),
    /// then clears its bindings for the next run.
    func firstText(in db: Database) throws -> String? {
        defer {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
            arena.used = 0
        }
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return sqlite3_column_text(handle, 0).map { String(cString: $0) }
        case SQLITE_DONE: return nil
        case let code: throw error(code, in: db)
        }
    }

    /// Runs a query and hands its first row to `read` (nil without a row), then clears its
    /// bindings for the next run.
    func firstRow<T>(in db: Database, _ read: (RawRow) throws -> T) throws -> T? {
        defer {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
            arena.used = 0
        }
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return try read(RawRow(handle: handle))
        case SQLITE_DONE: return nil
        case let code: throw error(code, in: db)
        }
    }

    private func error(_ code: Int32, in db: Database) -> DatabaseError {
        DatabaseError(
            resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)),
            sql: statement.sql)
    }

    /// Runs the statement once and clears its bindings for the next run; returns the rows it
    /// changed.
    @discardableResult
    func execute(in db: Database) throws -> Int {
        defer {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
            arena.used = 0
        }
        let code = sqlite3_step(handle)
        guard code == SQLITE_DONE else { throw error(code, in: db) }
        return Int(sqlite3_changes(db.sqliteConnection))
    }
}

/// The bytes of one run's texts, reused from run to run. A text that does not fit is bound as a
/// transient copy instead.
private final class Arena {
    static let capacity = 64 * 1024
    let base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
    var used = 0

    deinit {
        base.deallocate()
    }

    /// A copy of `bytes` that lives until the next run, or nil when the arena is full.
    func copy(_ bytes: UnsafeRawBufferPointer) -> UnsafeMutableRawPointer? {
        guard bytes.count <= Self.capacity - used else { return nil }
        let start = base + used
        if let source = bytes.baseAddress { start.copyMemory(from: source, byteCount: bytes.count) }
        used += bytes.count
        return start
    }
}

/// The row a raw statement stands on, read by column position; valid until the statement
/// steps again (`firstRow`, `MirrorReader`).
struct RawRow: ContactColumns {
    let handle: OpaquePointer

    var count: Int { Int(sqlite3_column_count(handle)) }
    func string(_ index: Int) -> String? { text(Int32(index)) }
    func int64(_ index: Int) -> Int64? { int64(Int32(index)) }

    func value(_ index: Int32) -> ScannedContact.ColumnValue {
        switch sqlite3_column_type(handle, index) {
        case SQLITE_NULL: return .null
        case SQLITE_INTEGER: return .int(sqlite3_column_int64(handle, index))
        case SQLITE_FLOAT: return .double(sqlite3_column_double(handle, index))
        default: return text(index).map { .text($0) } ?? .null
        }
    }

    func int64(_ index: Int32) -> Int64? {
        sqlite3_column_type(handle, index) == SQLITE_NULL ? nil : sqlite3_column_int64(handle, index)
    }

    func text(_ index: Int32) -> String? {
        guard let bytes = sqlite3_column_text(handle, index) else { return nil }
        return String(decoding: UnsafeBufferPointer(start: bytes, count: Int(sqlite3_column_bytes(handle, index))), as: UTF8.self)
    }

    func isBlob(_ index: Int32) -> Bool { sqlite3_column_type(handle, index) == SQLITE_BLOB }

    func blob(_ index: Int32) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: sqlite3_column_blob(handle, index), count: Int(sqlite3_column_bytes(handle, index)))
    }
}
