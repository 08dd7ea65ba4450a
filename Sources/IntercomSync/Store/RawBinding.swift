import GRDB
import GRDBSQLite

/// Runs a statement GRDB prepared (and caches) with values bound through SQLite's C API: GRDB's
/// `StatementArguments` box every value, a cost a million imported or pulled rows notice. Unbound
/// parameters are NULL.
struct RawBinding {
    private let statement: Statement
    private var handle: SQLiteStatement { statement.sqliteStatement }

    init(_ statement: Statement) {
        self.statement = statement
    }

    func bind(_ index: Int32, _ text: String?) {
        guard var text else { return }
        text.withUTF8 { bytes in
            _ = sqlite3_bind_text(handle, index, bytes.baseAddress, Int32(bytes.count), SQLITE_TRANSIENT)
        }
    }

    func bind(_ index: Int32, _ number: Int64?) {
        guard let number else { return }
        sqlite3_bind_int64(handle, index, number)
    }

    func bind(_ index: Int32, _ number: Double) {
        sqlite3_bind_double(handle, index, number)
    }

    /// Runs the statement once and clears its bindings for the next run; returns the rows it
    /// changed.
    @discardableResult
    func execute(in db: Database) throws -> Int {
        defer {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
        }
        let code = sqlite3_step(handle)
        guard code == SQLITE_DONE else {
            throw DatabaseError(
                resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)),
                sql: statement.sql)
        }
        return Int(sqlite3_changes(db.sqliteConnection))
    }
}
